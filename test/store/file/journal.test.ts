import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { nodeFsOps, type FsOps } from '../../../src/store/file/atomic-file.js';
import { readDataDir } from '../../../src/store/file/data-dir.js';
import { FileStore } from '../../../src/store/file/file-store.js';
import { SCHEMA_VERSION } from '../../../src/store/file/snapshot.js';
import { encodeJournalRecord, journalFileName, parseJournal } from '../../../src/store/file/journal.js';
import type { AccessTokenRecord } from '../../../src/store/types.js';
import { hashSecret } from '../../../src/crypto/secrets.js';
import { clientRecord, removeDir, silentLogger, tempDir } from '../../helpers/unit-context.js';

const NOW = Date.UTC(2026, 0, 1);

function access(raw: string, grantId = `grant-${raw}`): AccessTokenRecord {
  return { hash: hashSecret(raw), clientId: 'client-a', grantId, scopes: ['read'], resource: 'https://mcp.example.com', issuedAt: NOW, expiresAt: NOW + 3_600_000 };
}

const openStore = async (dir: string, options: { fs?: FsOps; compactAfterBytes?: number } = {}) =>
  FileStore.open({ dataDir: dir, logger: silentLogger(), ...options });

const journals = async (dir: string): Promise<string[]> => (await fsp.readdir(dir)).filter((n) => /^journal-\d+\.log$/.test(n)).sort();

async function readSnapshot(dir: string, file: string): Promise<{ version: number; seq: number; records: unknown[] }> {
  return JSON.parse(await fsp.readFile(path.join(dir, file), 'utf8')) as { version: number; seq: number; records: unknown[] };
}

/** Waits (without a time budget in the assertion) until `check` holds. */
async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('journal format', () => {
  const a = encodeJournalRecord({ seq: 1, ops: [['clients', 'x', { clientId: 'x' }]] });
  const b = encodeJournalRecord({ seq: 2, ops: [['clients', 'x', null]] });
  const c = encodeJournalRecord({ seq: 3, ops: [] });

  it('round-trips records, one line each', () => {
    const parsed = parseJournal(a + b + c);
    expect(parsed.records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(parsed.records[1]?.ops).toEqual([['clients', 'x', null]]);
    expect(parsed.torn).toBeUndefined();
    expect(parsed.corrupt).toEqual([]);
    expect(parsed.goodBytes).toBe(Buffer.byteLength(a + b + c));
  });

  it('drops only a last line cut short (no newline) as torn', () => {
    const parsed = parseJournal(a + b + c.slice(0, 20));
    expect(parsed.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(parsed.torn).toEqual({ line: 3, bytes: 20 });
    expect(parsed.corrupt).toEqual([]);
  });

  it('treats a complete last line that fails its checksum (zero-filled tail) as torn', () => {
    const zeros = '\u0000'.repeat(30);
    const parsed = parseJournal(`${a}${zeros}\n`);
    expect(parsed.records.map((r) => r.seq)).toEqual([1]);
    expect(parsed.torn?.line).toBe(2);
  });

  it('reports a damaged line in the middle as corrupt and keeps the good lines around it', () => {
    const damaged = b.replace('null', 'nul1');
    const parsed = parseJournal(a + damaged + c);
    expect(parsed.records.map((r) => r.seq)).toEqual([1, 3]);
    expect(parsed.corrupt).toEqual([{ line: 2, reason: 'checksum mismatch' }]);
    expect(parsed.torn).toBeUndefined();
  });
});

describe('FileStore journal and compaction', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('latchkey-journal-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('appends each change to the journal and leaves the snapshot alone until compaction', async () => {
    const { store } = await openStore(dir);
    const client = clientRecord();
    await store.putClient(client);
    // The snapshot was not rewritten; the journal holds the change.
    expect((await readSnapshot(dir, 'clients.json')).records).toEqual([]);
    const [journal] = await journals(dir);
    const parsed = parseJournal(await fsp.readFile(path.join(dir, journal ?? ''), 'utf8'));
    expect(parsed.records).toHaveLength(1);
    expect(parsed.records[0]?.ops).toEqual([['clients', client.clientId, client]]);
    expect((await fsp.stat(path.join(dir, journal ?? ''))).mode & 0o777).toBe(0o600);

    // Without close() (as after kill -9), a second open sees it.
    const state = await readDataDir(dir);
    expect(state.collections.clients.get(client.clientId)).toEqual(client);
    await store.close();
  });

  it('one change costs the same journal bytes whatever the size of the store', async () => {
    const { store } = await openStore(dir, { compactAfterBytes: Number.MAX_SAFE_INTEGER });
    const appended = async (raw: string): Promise<number> => {
      const before = (await fsp.stat(path.join(dir, (await journals(dir)).at(-1) ?? ''))).size;
      await store.putTokens(access(raw), undefined);
      return (await fsp.stat(path.join(dir, (await journals(dir)).at(-1) ?? ''))).size - before;
    };
    const small = await appended('first-000000');
    await Promise.all(Array.from({ length: 5_000 }, (_, i) => store.putTokens(access(`bulk-${i}`), undefined)));
    const large = await appended('second-00000');
    // Same record shape, so the same size to the byte (the sequence number has as many digits).
    expect(Math.abs(large - small)).toBeLessThanOrEqual(2);
    await store.close();
  });

  it('drops a torn last record, keeps every record before it, and says so', async () => {
    const first = await openStore(dir);
    const kept = clientRecord();
    await first.store.putClient(kept);
    const [journal] = await journals(dir);
    // A crash in the middle of the next append.
    const torn = encodeJournalRecord({ seq: 99, ops: [['clients', 'never-acknowledged', clientRecord()]] });
    await fsp.appendFile(path.join(dir, journal ?? ''), torn.slice(0, torn.length / 2));

    const { store, report } = await openStore(dir);
    expect(report.journal).toMatchObject({ tornRecords: 1, corruptRecords: 0 });
    expect(report.journal.records).toBeGreaterThanOrEqual(1);
    expect(await store.getClient(kept.clientId)).toEqual(kept);
    expect(await store.getClient('never-acknowledged')).toBeUndefined();
    // New changes go after it and survive another reopen.
    const later = clientRecord();
    await store.putClient(later);
    const again = await readDataDir(dir);
    expect([...again.collections.clients.keys()].sort()).toEqual([kept.clientId, later.clientId].sort());
    await store.close();
    await first.store.close();
  });

  it('skips a damaged record in the middle, applies the rest, and keeps a copy of the file', async () => {
    const first = await openStore(dir);
    const [a, b, c] = [clientRecord(), clientRecord(), clientRecord()];
    await first.store.putClient(a);
    await first.store.putClient(b);
    await first.store.putClient(c);
    const [journal] = await journals(dir);
    const file = path.join(dir, journal ?? '');
    const lines = (await fsp.readFile(file, 'utf8')).split('\n');
    lines[1] = (lines[1] ?? '').replace(b.clientId, 'X'.repeat(b.clientId.length));
    await fsp.writeFile(file, lines.join('\n'));

    const { store, report } = await openStore(dir);
    expect(report.journal.corruptRecords).toBe(1);
    expect(await store.getClient(a.clientId)).toEqual(a);
    expect(await store.getClient(b.clientId)).toBeUndefined();
    expect(await store.getClient(c.clientId)).toEqual(c);
    expect((await fsp.readdir(dir)).some((n) => n.startsWith(`${journal ?? ''}.corrupt-`))).toBe(true);
    await store.close();
    await first.store.close();
  });

  it('compacts in the background once the journal is big enough, then deletes the old journal', async () => {
    const { store } = await openStore(dir, { compactAfterBytes: 4_096 });
    const clients = Array.from({ length: 40 }, () => clientRecord());
    for (const client of clients) await store.putClient(client);
    await until(async () => (await readSnapshot(dir, 'clients.json')).records.length > 0);
    await store.compact();
    const snapshot = await readSnapshot(dir, 'clients.json');
    expect(snapshot.version).toBe(SCHEMA_VERSION);
    expect(snapshot.seq).toBeGreaterThan(0);
    expect(snapshot.records).toHaveLength(40);
    // Only the journal that receives new appends is left.
    expect(await journals(dir)).toHaveLength(1);
    await store.close();
    // A clean stop leaves snapshots only.
    expect(await journals(dir)).toEqual([]);
    const { store: reopened, report } = await openStore(dir);
    expect(report.counts.clients).toBe(40);
    expect(report.journal.records).toBe(0);
    await reopened.close();
  });

  it('never writes a change that is not yet durable into a snapshot', async () => {
    const { store } = await openStore(dir);
    const client = clientRecord();
    await store.putClient(client);
    // touchClient changes memory and waits for the next append; compaction must not take it.
    store.touchClient(client.clientId, NOW + 120_000);
    await store.compact();
    const [record] = (await readSnapshot(dir, 'clients.json')).records as { lastUsedAt?: number }[];
    expect(record?.lastUsedAt).toBeUndefined();
    expect((await store.getClient(client.clientId))?.lastUsedAt).toBe(NOW + 120_000);
    await store.close();
  });

  it('a failing compaction loses nothing: writes go on, health says why, and it heals', async () => {
    let failRename = false;
    const fs: FsOps = {
      ...nodeFsOps,
      rename: async (from, to) => {
        if (failRename) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
        await nodeFsOps.rename(from, to);
      },
    };
    const { store } = await openStore(dir, { fs });
    const a = clientRecord();
    await store.putClient(a);
    failRename = true;
    await store.compact();
    expect(await store.health()).toEqual({ ok: true, compactionError: 'EIO' });
    const b = clientRecord();
    await store.putClient(b);
    expect((await fsp.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // Everything is still readable from the snapshots plus the journal.
    const state = await readDataDir(dir);
    expect([...state.collections.clients.keys()].sort()).toEqual([a.clientId, b.clientId].sort());
    failRename = false;
    await store.compact();
    expect(await store.health()).toEqual({ ok: true });
    expect((await readSnapshot(dir, 'clients.json')).records).toHaveLength(2);
    await store.close();
  });

  it('a crash half-way through compaction (some snapshots replaced) loses nothing', async () => {
    let renames = 0;
    let crashAfter = Infinity;
    const fs: FsOps = {
      ...nodeFsOps,
      rename: async (from, to) => {
        if (++renames > crashAfter) throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
        await nodeFsOps.rename(from, to);
      },
      unlink: async (file) => {
        if (renames > crashAfter) throw Object.assign(new Error('simulated crash'), { code: 'EIO' });
        await nodeFsOps.unlink(file);
      },
    };
    const { store } = await openStore(dir, { fs });
    const client = clientRecord();
    await store.putClient(client);
    await store.putTokens(access('t1'), undefined);
    await store.putTokens(access('t2'), undefined);
    await store.deleteAccessToken(hashSecret('t1'));
    // clients.json and codes.json get replaced, tokens.json and refresh_tokens.json do not.
    crashAfter = renames + 2;
    await store.compact();
    expect((await readSnapshot(dir, 'clients.json')).seq).toBeGreaterThan(0);
    expect((await readSnapshot(dir, 'tokens.json')).seq).toBe(0);

    const { store: reopened } = await openStore(dir);
    expect(await reopened.getClient(client.clientId)).toEqual(client);
    expect(await reopened.getAccessToken(hashSecret('t1'), NOW)).toBeUndefined();
    expect(await reopened.getAccessToken(hashSecret('t2'), NOW)).toBeDefined();
    await reopened.close();
    await store.close();
  });

  it('reads version 1 snapshot files (before the journal) as a snapshot at sequence 0', async () => {
    const client = clientRecord();
    await fsp.writeFile(path.join(dir, 'clients.json'), JSON.stringify({ version: 1, records: [client] }), { mode: 0o600 });
    const { store, report } = await openStore(dir);
    expect(report.setAside).toEqual([]);
    expect(await store.getClient(client.clientId)).toEqual(client);
    await store.putClient(clientRecord());
    await store.close();
    const upgraded = await readSnapshot(dir, 'clients.json');
    expect(upgraded.version).toBe(SCHEMA_VERSION);
    expect(upgraded.records).toHaveLength(2);
  });

  it('reads a large snapshot back line by line, across serialization chunks', async () => {
    const { store } = await openStore(dir);
    await Promise.all(Array.from({ length: 2_500 }, (_, i) => store.putTokens(access(`many-${i}`), undefined)));
    await store.close();
    const text = await fsp.readFile(path.join(dir, 'tokens.json'), 'utf8');
    expect(text.split('\n')).toHaveLength(2_500 + 3); // header, one line per record, ]}, and the final newline
    const state = await readDataDir(dir);
    expect(state.snapshots.accessTokens).toMatchObject({ status: 'ok', bytes: Buffer.byteLength(text) });
    expect(state.collections.accessTokens.size).toBe(2_500);
    expect(state.collections.accessTokens.get(hashSecret('many-1234'))).toEqual(access('many-1234'));
  });

  it('reads a snapshot whose commas are off record by record: a stray or missing comma costs nothing', async () => {
    const a = JSON.stringify(access('x'));
    const b = JSON.stringify(access('y'));
    await fsp.writeFile(path.join(dir, 'tokens.json'), `{"version":${SCHEMA_VERSION},"seq":0,"records":[\n${a},\n]}\n`);
    let state = await readDataDir(dir);
    expect(state.snapshots.accessTokens).toMatchObject({ status: 'ok' });
    expect(state.collections.accessTokens.size).toBe(1);
    await fsp.writeFile(path.join(dir, 'tokens.json'), `{"version":${SCHEMA_VERSION},"seq":0,"records":[\n${a}\n${b}\n]}\n`);
    state = await readDataDir(dir);
    expect(state.snapshots.accessTokens).toMatchObject({ status: 'ok' });
    expect(state.collections.accessTokens.size).toBe(2);
  });

  it('a refused append that could not be cut off is never replayed, and blocks compaction until healed', async () => {
    let failFsync = false;
    let failTruncate = false;
    const fail = (): never => {
      throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    };
    const fs: FsOps = {
      ...nodeFsOps,
      fsync: async (h) => (failFsync ? fail() : nodeFsOps.fsync(h)),
      truncate: async (h, n) => (failTruncate ? fail() : nodeFsOps.truncate(h, n)),
    };
    const { store } = await openStore(dir, { fs });
    const kept = clientRecord();
    await store.putClient(kept);
    failFsync = true;
    failTruncate = true;
    const refused = clientRecord();
    await expect(store.putClient(refused)).rejects.toThrow(/store unavailable/);
    // The whole refused line is in the file, and could not be cut off.
    const [journal] = await journals(dir);
    expect(await fsp.readFile(path.join(dir, journal ?? ''), 'utf8')).toContain(refused.clientId);
    // No compaction while the journal may end in a refused record.
    await store.compact();
    expect(await journals(dir)).toEqual([journal]);
    expect((await readSnapshot(dir, 'clients.json')).records).toEqual([]);

    failFsync = false;
    failTruncate = false;
    expect((await store.health()).ok).toBe(true);
    const after = clientRecord();
    await store.putClient(after);
    const state = await readDataDir(dir);
    expect(state.collections.clients.has(refused.clientId)).toBe(false);
    expect([...state.collections.clients.keys()].sort()).toEqual([kept.clientId, after.clientId].sort());
    await store.close();
  });

  it('drops a record whose sequence number a later journal file uses again (a refused append left behind)', async () => {
    const a = clientRecord();
    const refused = clientRecord();
    const b = clientRecord();
    await fsp.writeFile(path.join(dir, journalFileName(1)), encodeJournalRecord({ seq: 1, ops: [['clients', a.clientId, a]] }) + encodeJournalRecord({ seq: 2, ops: [['clients', refused.clientId, refused]] }));
    await fsp.writeFile(path.join(dir, journalFileName(2)), encodeJournalRecord({ seq: 2, ops: [['clients', b.clientId, b]] }));
    const state = await readDataDir(dir);
    expect([...state.collections.clients.keys()].sort()).toEqual([a.clientId, b.clientId].sort());
  });

  it('close() refuses changes that arrive while it runs, and compact() after a failed close returns', async () => {
    const { store } = await openStore(dir);
    await store.putClient(clientRecord());
    const closing = store.close();
    await expect(store.putClient(clientRecord())).rejects.toThrow(/shutting down/);
    await closing;
    await store.compact(); // must not hang
    const state = await readDataDir(dir);
    expect(state.collections.clients.size).toBe(1);
  });

  it('compacts at startup when a snapshot was set aside, so backups find one point in time again', async () => {
    const first = await openStore(dir);
    await first.store.putClient(clientRecord());
    await first.store.putTokens(access('t'), undefined);
    await first.store.close();
    await fsp.writeFile(path.join(dir, 'codes.json'), 'garbage');
    const { store } = await openStore(dir);
    await until(async () => (await readDataDir(dir)).consistent);
    expect((await readDataDir(dir)).consistent).toBe(true);
    await store.close();
  });

  it('the line-by-line reader refuses what JSON refuses in the header (leading zeros, unsafe integers)', async () => {
    for (const header of ['{"version":02,"seq":0,"records":[', '{"version":2,"seq":007,"records":[', '{"version":2,"seq":99999999999999999999,"records":[']) {
      await fsp.writeFile(path.join(dir, 'tokens.json'), `${header}\n]}\n`);
      const snap = (await readDataDir(dir)).snapshots.accessTokens;
      if (header.includes('99999')) expect(snap).toMatchObject({ status: 'bad', reason: expect.stringMatching(/schema|version/) });
      else expect(snap).toMatchObject({ status: 'bad', reason: expect.stringMatching(/not valid JSON/) });
    }
  });

  it('names journal files so they sort by generation', () => {
    expect(journalFileName(7)).toBe('journal-00000007.log');
    expect([journalFileName(10), journalFileName(9)].sort()).toEqual([journalFileName(9), journalFileName(10)]);
  });
});

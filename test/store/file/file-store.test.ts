import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { FsOps } from '../../../src/store/file/atomic-file.js';
import { FileStore } from '../../../src/store/file/file-store.js';
import { SCHEMA_VERSION } from '../../../src/store/file/snapshot.js';
import {
  StoreOpenError,
  StoreUnavailableError,
  type AccessTokenRecord,
  type CodeRecord,
  type RefreshTokenRecord,
} from '../../../src/store/types.js';
import { hashSecret, newSecret, cryptoRandom } from '../../../src/crypto/secrets.js';
import { clientRecord, removeDir, silentLogger, tempDir } from '../../helpers/unit-context.js';
import { faultyFs } from '../../helpers/faulty-fs.js';

const NOW = Date.UTC(2026, 0, 1);
const FILES = ['clients.json', 'codes.json', 'tokens.json', 'refresh_tokens.json'];

const open = async (dir: string, fs?: FsOps): Promise<FileStore> =>
  (await FileStore.open({ dataDir: dir, logger: silentLogger(), ...(fs ? { fs } : {}) })).store;

function code(raw: string, overrides: Partial<CodeRecord> = {}): CodeRecord {
  return {
    hash: hashSecret(raw),
    clientId: 'client-a',
    grantId: 'grant-1',
    redirectUri: 'https://claude.ai/api/mcp/auth_callback',
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    scopes: ['read'],
    resource: 'https://mcp.example.com',
    issuedAt: NOW,
    expiresAt: NOW + 600_000,
    ...overrides,
  };
}

function access(raw: string, overrides: Partial<AccessTokenRecord> = {}): AccessTokenRecord {
  return {
    hash: hashSecret(raw),
    clientId: 'client-a',
    grantId: 'grant-1',
    scopes: ['read'],
    resource: 'https://mcp.example.com',
    issuedAt: NOW,
    expiresAt: NOW + 3_600_000,
    ...overrides,
  };
}

function refresh(raw: string, overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return { ...access(raw), expiresAt: NOW + 30 * 86_400_000, ...overrides };
}

async function readAll(dir: string): Promise<string> {
  const names = await fsp.readdir(dir);
  const texts = await Promise.all(names.map((n) => fsp.readFile(path.join(dir, n), 'utf8')));
  return texts.join('\n');
}

describe('FileStore', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await tempDir('latchkey-store-');
  });

  afterEach(async () => {
    await removeDir(dir);
  });

  describe('layout', () => {
    it('creates all four files with a version at first start, dir 0700 and files 0600', async () => {
      const dataDir = path.join(dir, 'data');
      const store = await open(dataDir);
      await store.close();
      expect((await fsp.stat(dataDir)).mode & 0o777).toBe(0o700);
      for (const name of FILES) {
        const file = path.join(dataDir, name);
        expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
        expect(JSON.parse(await fsp.readFile(file, 'utf8'))).toEqual({ version: SCHEMA_VERSION, seq: expect.any(Number), records: [] });
      }
    });

    it("leaves an existing directory's mode to its owner, and keeps files 0600 after writes", async () => {
      await fsp.chmod(dir, 0o750);
      const store = await open(dir);
      await store.putClient(clientRecord());
      await store.putTokens(access('a'), refresh('r'));
      await store.close();
      expect((await fsp.stat(dir)).mode & 0o777).toBe(0o750);
      for (const name of FILES) expect((await fsp.stat(path.join(dir, name))).mode & 0o777).toBe(0o600);
    });

    it.each([
      [0o777, 'group and others'],
      [0o775, 'its group'],
      [0o770, 'its group'],
      [0o702, 'others'],
    ])('refuses to open a directory with mode %o, writable by %s, saying how to fix it', async (mode, who) => {
      await fsp.chmod(dir, mode);
      const opened = open(dir);
      await expect(opened).rejects.toBeInstanceOf(StoreOpenError);
      await expect(opened).rejects.toThrow(`is writable by ${who}`);
      await expect(opened).rejects.toThrow(`chmod 700 ${dir}`);
      expect((await fsp.stat(dir)).mode & 0o777).toBe(mode);
      expect(await fsp.readdir(dir)).toEqual([]);
    });

    const root = process.getuid?.() === 0;
    (root ? it : it.skip)('refuses a directory that belongs to another user (run as root: the test chowns it)', async () => {
      await fsp.chown(dir, 101, 101);
      await expect(open(dir)).rejects.toThrow(/belongs to uid 101, but Latchkey runs as uid 0: .*chown -R 0 /);
    });

    it('leaves no temporary files behind', async () => {
      const store = await open(dir);
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.putCode(code(`c${i}`))));
      await store.close();
      expect((await fsp.readdir(dir)).sort()).toEqual([...FILES].sort());
    });

    it('removes the temporary file of a write a crash interrupted, and nothing else', async () => {
      await (await open(dir)).close();
      await fsp.writeFile(path.join(dir, '.tokens.json.4242.7.tmp'), '{"version":1,"records":[{"half');
      await fsp.writeFile(path.join(dir, '.notes.4242.7.tmp'), 'mine');
      await (await open(dir)).close();
      expect((await fsp.readdir(dir)).sort()).toEqual(['.notes.4242.7.tmp', ...FILES].sort());
    });

    it('writes no raw code, token or client secret, only their hashes', async () => {
      const rawCode = newSecret(cryptoRandom);
      const rawAccess = newSecret(cryptoRandom);
      const rawRefresh = newSecret(cryptoRandom);
      const rawSecret = newSecret(cryptoRandom);
      const store = await open(dir);
      await store.putClient(clientRecord({ clientSecretHash: hashSecret(rawSecret) }));
      await store.putCode(code(rawCode));
      await store.putTokens(access(rawAccess), refresh(rawRefresh));
      await store.close();
      const all = await readAll(dir);
      for (const raw of [rawCode, rawAccess, rawRefresh, rawSecret]) {
        expect(all).not.toContain(raw);
        expect(all).toContain(hashSecret(raw));
      }
    });
  });

  describe('persistence', () => {
    it('keeps all four collections across a reopen', async () => {
      const client = clientRecord({ clientSecretHash: hashSecret('s') });
      const first = await open(dir);
      await first.putClient(client);
      await first.putCode(code('c1'));
      await first.consumeCode(hashSecret('c1'), NOW + 1, { access: access('a1'), refresh: refresh('r1') });
      await first.putCode(code('c2'));
      await first.putTokens(access('a2', { grantId: 'g2' }), refresh('r2', { grantId: 'g2' }));
      await first.rotateRefreshToken(hashSecret('r2'), NOW + 2, NOW + 86_400_000, {
        access: access('a3', { grantId: 'g2' }),
        refresh: refresh('r3', { grantId: 'g2' }),
      });
      await first.close();

      const second = await open(dir);
      expect(await second.getClient(client.clientId)).toEqual(client);
      expect((await second.getCode(hashSecret('c1'), NOW + 3))?.consumedAt).toBe(NOW + 1);
      expect(await second.getCode(hashSecret('c2'), NOW + 3)).toEqual(code('c2'));
      for (const a of ['a1', 'a2', 'a3']) expect(await second.getAccessToken(hashSecret(a), NOW + 3)).toBeDefined();
      expect((await second.getRefreshToken(hashSecret('r2'), NOW + 3))?.rotatedAt).toBe(NOW + 2);
      expect(await second.getRefreshToken(hashSecret('r3'), NOW + 3)).toEqual(refresh('r3', { grantId: 'g2' }));
      expect(await second.counts(NOW + 3)).toEqual({ clients: 1, codes: 1, accessTokens: 3, refreshTokens: 2 });
      await second.close();
    });

    it('reports what it loaded', async () => {
      const first = await open(dir);
      await first.putClient(clientRecord());
      await first.putClient(clientRecord());
      await first.close();
      const { store, report } = await FileStore.open({ dataDir: dir, logger: silentLogger() });
      expect(report.counts.clients).toBe(2);
      expect(report.setAside).toEqual([]);
      await store.close();
    });

    it('persists deletions across a reopen', async () => {
      const client = clientRecord();
      const first = await open(dir);
      await first.putClient(client);
      await first.putTokens(access('a', { clientId: client.clientId }), refresh('r', { clientId: client.clientId }));
      expect(await first.deleteClient(client.clientId)).toBe(true);
      expect(await first.deleteClient(client.clientId)).toBe(false);
      await first.close();
      const second = await open(dir);
      expect(await second.getClient(client.clientId)).toBeUndefined();
      expect(await second.getAccessToken(hashSecret('a'), NOW)).toBeUndefined();
      expect(await second.getRefreshToken(hashSecret('r'), NOW)).toBeUndefined();
      await second.close();
    });
  });

  describe('expiry', () => {
    it('never returns an expired record, even before cleanup', async () => {
      const store = await open(dir);
      await store.putCode(code('c'));
      await store.putTokens(access('a'), refresh('r'));
      expect(await store.getCode(hashSecret('c'), NOW + 599_999)).toBeDefined();
      expect(await store.getCode(hashSecret('c'), NOW + 600_000)).toBeUndefined();
      expect(await store.getAccessToken(hashSecret('a'), NOW + 3_599_999)).toBeDefined();
      expect(await store.getAccessToken(hashSecret('a'), NOW + 3_600_000)).toBeUndefined();
      expect(await store.getRefreshToken(hashSecret('r'), NOW + 30 * 86_400_000)).toBeUndefined();
      expect(await store.consumeCode(hashSecret('c'), NOW + 600_000, { access: access('x'), refresh: undefined })).toBeUndefined();
      expect(await store.getAccessToken(hashSecret('x'), NOW)).toBeUndefined();
      expect(
        await store.rotateRefreshToken(hashSecret('r'), NOW + 30 * 86_400_000, NOW, { access: access('y'), refresh: refresh('z') }),
      ).toBeUndefined();
      await store.close();
    });

    it('deleteExpired removes and counts expired codes and tokens, never clients', async () => {
      const store = await open(dir);
      const client = clientRecord();
      await store.putClient(client);
      await store.putCode(code('c-old', { expiresAt: NOW + 10 }));
      await store.putCode(code('c-new', { expiresAt: NOW + 1000 }));
      await store.putTokens(access('a-old', { expiresAt: NOW + 10 }), refresh('r-old', { expiresAt: NOW + 10 }));
      await store.putTokens(access('a-old2', { expiresAt: NOW + 20 }), refresh('r-new', { expiresAt: NOW + 1000 }));
      await store.putTokens(access('a-new', { expiresAt: NOW + 1000 }), undefined);

      expect(await store.deleteExpired(NOW + 20)).toEqual({ codes: 1, accessTokens: 2, refreshTokens: 1 });
      expect(await store.deleteExpired(NOW + 20)).toEqual({ codes: 0, accessTokens: 0, refreshTokens: 0 });
      expect(await store.getCode(hashSecret('c-new'), NOW)).toBeDefined();
      expect(await store.getAccessToken(hashSecret('a-new'), NOW)).toBeDefined();
      expect(await store.getRefreshToken(hashSecret('r-new'), NOW)).toBeDefined();
      await store.close();

      const reopened = await open(dir);
      expect(await reopened.getClient(client.clientId)).toEqual(client);
      // Only the live ones are on disk.
      expect(await reopened.counts(NOW)).toEqual({ clients: 1, codes: 1, accessTokens: 1, refreshTokens: 1 });
      expect(await reopened.deleteExpired(NOW + 10 * 365 * 86_400_000)).toEqual({ codes: 1, accessTokens: 1, refreshTokens: 1 });
      expect(await reopened.getClient(client.clientId)).toEqual(client);
      await reopened.close();
    });

    it('counts only live, unconsumed codes and unrotated refresh tokens', async () => {
      const store = await open(dir);
      await store.putCode(code('c1'));
      await store.putCode(code('c2'));
      await store.consumeCode(hashSecret('c2'), NOW, { access: access('a'), refresh: refresh('r') });
      await store.rotateRefreshToken(hashSecret('r'), NOW, NOW + 1000, { access: access('a2'), refresh: refresh('r2') });
      expect(await store.counts(NOW)).toEqual({ clients: 0, codes: 1, accessTokens: 2, refreshTokens: 1 });
      await store.close();
    });
  });

  describe('atomic operations', () => {
    it('consumeCode: exactly one of 100 concurrent calls wins and only its tokens are stored', async () => {
      const store = await open(dir);
      await store.putCode(code('c'));
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) => store.consumeCode(hashSecret('c'), NOW + 1, { access: access(`a${i}`), refresh: refresh(`r${i}`) })),
      );
      const winners = results.flatMap((r, i) => (r !== undefined && r.consumedAt === undefined ? [i] : []));
      expect(winners).toHaveLength(1);
      expect(results.every((r) => r !== undefined)).toBe(true);
      const winner = winners[0] ?? -1;
      for (let i = 0; i < 100; i++) {
        expect((await store.getAccessToken(hashSecret(`a${i}`), NOW + 1)) !== undefined).toBe(i === winner);
      }
      await store.close();
      const reopened = await open(dir);
      expect(await reopened.counts(NOW + 1)).toEqual({ clients: 0, codes: 0, accessTokens: 1, refreshTokens: 1 });
      await reopened.close();
    });

    it('consumeCode of an unknown code stores nothing', async () => {
      const store = await open(dir);
      expect(await store.consumeCode(hashSecret('nope'), NOW, { access: access('a'), refresh: undefined })).toBeUndefined();
      expect(await store.getAccessToken(hashSecret('a'), NOW)).toBeUndefined();
      await store.close();
    });

    it('rotateRefreshToken: exactly one of 50 concurrent calls rotates; the old token is kept until retainUntil', async () => {
      const store = await open(dir);
      await store.putTokens(access('a'), refresh('r'));
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.rotateRefreshToken(hashSecret('r'), NOW + 5, NOW + 1000, { access: access(`a${i}`), refresh: refresh(`r${i}`) }),
        ),
      );
      expect(results.filter((r) => r !== undefined && r.rotatedAt === undefined)).toHaveLength(1);
      expect(results.filter((r) => r?.rotatedAt === NOW + 5)).toHaveLength(49);
      const old = await store.getRefreshToken(hashSecret('r'), NOW + 999);
      expect(old).toMatchObject({ rotatedAt: NOW + 5, expiresAt: NOW + 1000 });
      expect(await store.getRefreshToken(hashSecret('r'), NOW + 1000)).toBeUndefined();
      await store.close();
    });

    it('revokeGrant deletes every code and token of one grant and nothing else', async () => {
      const store = await open(dir);
      await store.putCode(code('c1'));
      await store.putTokens(access('a1'), refresh('r1'));
      await store.putTokens(access('a2', { grantId: 'grant-2' }), refresh('r2', { grantId: 'grant-2' }));
      expect(await store.revokeGrant('grant-1')).toBe(3);
      expect(await store.revokeGrant('grant-1')).toBe(0);
      expect(await store.getAccessToken(hashSecret('a1'), NOW)).toBeUndefined();
      expect(await store.getAccessToken(hashSecret('a2'), NOW)).toBeDefined();
      expect(await store.getRefreshToken(hashSecret('r2'), NOW)).toBeDefined();
      await store.close();
    });

    it('touchClient records the last use without failing for unknown clients', async () => {
      const store = await open(dir);
      const client = clientRecord();
      await store.putClient(client);
      store.touchClient(client.clientId, NOW + 5);
      store.touchClient('unknown', NOW);
      expect((await store.getClient(client.clientId))?.lastUsedAt).toBe(NOW + 5);
      await store.close();
      const reopened = await open(dir);
      expect((await reopened.getClient(client.clientId))?.lastUsedAt).toBe(NOW + 5);
      await reopened.close();
    });
  });

  describe('corrupt and foreign files', () => {
    it.each([
      ['a header cut short', (valid: string) => valid.slice(0, 10)],
      ['garbage', () => '\u0000\u0001 not json at all \u00ff'],
      ['an empty file', () => ''],
      ['a wrong (older) version', (valid: string) => valid.replace(`"version":${SCHEMA_VERSION}`, '"version":0')],
      ['no version', () => JSON.stringify({ records: [] })],
      ['a JSON array', () => '[]'],
    ])('moves aside %s with its bytes intact and starts that collection empty', async (_name, corrupt) => {
      const first = await open(dir);
      const keep = clientRecord();
      await first.putClient(keep);
      await first.putTokens(access('a'), undefined);
      await first.close();

      const file = path.join(dir, 'tokens.json');
      const bad = corrupt(await fsp.readFile(file, 'utf8'));
      await fsp.writeFile(file, bad, { mode: 0o600 });

      const { store, report } = await FileStore.open({ dataDir: dir, logger: silentLogger() });
      expect(report.setAside).toHaveLength(1);
      const aside = report.setAside[0];
      expect(aside?.file).toBe(file);
      expect(path.dirname(aside?.movedTo ?? '')).toBe(dir);
      expect(aside?.movedTo).not.toBe(file);
      expect(await fsp.readFile(aside?.movedTo ?? '', 'utf8')).toBe(bad);
      // The collection starts empty, and a fresh valid file replaces the corrupt one.
      expect(await store.getAccessToken(hashSecret('a'), NOW)).toBeUndefined();
      expect(JSON.parse(await fsp.readFile(file, 'utf8'))).toEqual({ version: SCHEMA_VERSION, seq: 0, records: [] });
      // Other collections are unaffected.
      expect(await store.getClient(keep.clientId)).toEqual(keep);
      await store.putTokens(access('b'), undefined);
      await store.close();
      // The moved-aside copy is never touched by later writes.
      expect(await fsp.readFile(aside?.movedTo ?? '', 'utf8')).toBe(bad);
    });

    it.each([
      ['cut off in the middle of a record', (text: string) => text.slice(0, text.lastIndexOf('"hash"')), 2, true],
      ['cut off right after a whole record', (text: string) => text.slice(0, text.lastIndexOf('\n]}')), 3, true],
      ['followed by the zeros a crash leaves', (text: string) => `${text}${'\0'.repeat(4096)}`, 3, false],
      ['followed by stray text', (text: string) => `${text}oops\n`, 3, false],
      ['with a comma after its last record', (text: string) => text.replace(/\n\]\}/, ',\n]}'), 3, false],
    ])('loads a snapshot %s: every whole record before the damage, never the whole collection lost', async (_name, damage, loaded, cutShort) => {
      const first = await open(dir);
      for (const t of ['a', 'b', 'c']) await first.putTokens(access(t), undefined);
      await first.compact();
      await first.close();
      const file = path.join(dir, 'tokens.json');
      const original = await fsp.readFile(file, 'utf8');
      await fsp.writeFile(file, damage(original), { mode: 0o600 });

      const { store, report } = await FileStore.open({ dataDir: dir, logger: silentLogger() });
      expect(await store.counts(NOW)).toMatchObject({ accessTokens: loaded });
      if (cutShort) {
        const copy = report.setAside.find((a) => a.movedTo.includes('.corrupt-'));
        expect(copy?.reason).toMatch(/cut short/);
        expect(await fsp.readFile(copy?.movedTo ?? '', 'utf8')).toBe(damage(original));
      }
      if (damage(original).includes('oops')) expect(report.setAside.some((a) => a.movedTo.includes('.rejected-'))).toBe(true);
      await store.close();
      // Written again whole at the next compaction: the next start sets nothing aside.
      const again = await FileStore.open({ dataDir: dir, logger: silentLogger() });
      expect(again.report.setAside).toEqual([]);
      expect(await again.store.counts(NOW)).toMatchObject({ accessTokens: loaded });
      await again.store.close();
    });

    it('keeps aside only the records it cannot read, byte for byte, and loads the rest', async () => {
      const first = await open(dir);
      for (const t of ['a', 'b', 'c']) await first.putTokens(access(t), undefined);
      await first.compact();
      await first.close();
      const file = path.join(dir, 'tokens.json');
      const lines = (await fsp.readFile(file, 'utf8')).split('\n');
      // Line 1 is the header; lines 2..4 the records. Break the first record's schema and the third's JSON.
      const broken = lines[1]?.replace(/"clientId":"[^"]*"/, '"clientId":42') ?? '';
      lines[1] = broken;
      lines[3] = '{"hash": this is not JSON';
      await fsp.writeFile(file, lines.join('\n'), { mode: 0o600 });

      const { store, report } = await FileStore.open({ dataDir: dir, logger: silentLogger() });
      expect(report.setAside).toHaveLength(1);
      const aside = report.setAside[0];
      expect(aside?.reason).toBe('2 unreadable record(s) at line 2, 4');
      expect(aside?.movedTo).toMatch(/tokens\.json\.rejected-[0-9TZ-]+\.jsonl$/);
      expect(await fsp.readFile(aside?.movedTo ?? '', 'utf8')).toBe(`${broken.replace(/,$/, '')}\n{"hash": this is not JSON\n`);
      expect((await fsp.stat(aside?.movedTo ?? '')).mode & 0o777).toBe(0o600);
      // The readable record loaded; the store works and writes as usual.
      expect(await store.getAccessToken(hashSecret('b'), NOW)).toBeDefined();
      await store.putTokens(access('d'), undefined);
      await store.close();
      // The next start finds a clean snapshot (compaction wrote it without them): nothing set aside again.
      const again = await FileStore.open({ dataDir: dir, logger: silentLogger() });
      expect(again.report.setAside).toEqual([]);
      expect(await again.store.getAccessToken(hashSecret('d'), NOW)).toBeDefined();
      await again.store.close();
      expect((await fsp.readdir(dir)).filter((f) => f.includes('.rejected-'))).toHaveLength(1);
    });

    it('refuses to open a file of a newer schema version and leaves it untouched', async () => {
      const store = await open(dir);
      await store.close();
      const file = path.join(dir, 'clients.json');
      const newer = JSON.stringify({ version: SCHEMA_VERSION + 1, records: [{ anything: 'new' }] });
      await fsp.writeFile(file, newer);
      await expect(open(dir)).rejects.toBeInstanceOf(StoreOpenError);
      await expect(open(dir)).rejects.toThrow(/newer/);
      expect(await fsp.readFile(file, 'utf8')).toBe(newer);
      expect((await fsp.readdir(dir)).filter((n) => n.includes('corrupt'))).toEqual([]);
    });
    it('refuses to open when a data file cannot be read, naming it', async () => {
      await fsp.mkdir(path.join(dir, 'codes.json'));
      const err = await open(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreOpenError);
      expect((err as Error).message).toContain(path.join(dir, 'codes.json'));
      expect((await fsp.stat(path.join(dir, 'codes.json'))).isDirectory()).toBe(true);
    });
  });

  describe('write faults (ENOSPC)', () => {
    it.each(['write', 'fsync'] as const)(
      'a failing %s refuses the change, rolls it back, reports unhealthy, then heals',
      async (op) => {
        const faulty = faultyFs();
        const store = await open(dir, faulty.fs);
        const before = clientRecord();
        await store.putClient(before);
        expect(await store.health()).toEqual({ ok: true });

        faulty.fail(op);
        const lost = clientRecord();
        await expect(store.putClient(lost)).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(await store.getClient(lost.clientId)).toBeUndefined();
        expect(await store.getClient(before.clientId)).toEqual(before);
        await expect(store.putTokens(access('a'), refresh('r'))).rejects.toThrow(StoreUnavailableError);
        expect(await store.getAccessToken(hashSecret('a'), NOW)).toBeUndefined();
        expect(await store.getRefreshToken(hashSecret('r'), NOW)).toBeUndefined();
        const health = await store.health();
        expect(health.ok).toBe(false);
        expect(health.error).toBe('ENOSPC');
        expect((await fsp.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);

        faulty.fail(undefined);
        expect(await store.health()).toEqual({ ok: true });
        const after = clientRecord();
        await store.putClient(after);
        await store.putTokens(access('b'), refresh('s'));
        await store.close();

        // On disk: everything acknowledged, nothing refused.
        const reopened = await open(dir);
        expect(await reopened.getClient(before.clientId)).toEqual(before);
        expect(await reopened.getClient(after.clientId)).toEqual(after);
        expect(await reopened.getClient(lost.clientId)).toBeUndefined();
        expect(await reopened.getAccessToken(hashSecret('a'), NOW)).toBeUndefined();
        expect(await reopened.getAccessToken(hashSecret('b'), NOW)).toBeDefined();
        await reopened.close();
      },
    );

    it('a failed consumeCode leaves the code unconsumed so the client can retry', async () => {
      const faulty = faultyFs();
      const store = await open(dir, faulty.fs);
      await store.putCode(code('c'));
      faulty.fail('fsync');
      await expect(store.consumeCode(hashSecret('c'), NOW, { access: access('a'), refresh: refresh('r') })).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
      expect((await store.getCode(hashSecret('c'), NOW))?.consumedAt).toBeUndefined();
      expect(await store.getAccessToken(hashSecret('a'), NOW)).toBeUndefined();
      faulty.fail(undefined);
      const again = await store.consumeCode(hashSecret('c'), NOW, { access: access('a2'), refresh: refresh('r2') });
      expect(again?.consumedAt).toBeUndefined();
      expect(await store.getAccessToken(hashSecret('a2'), NOW)).toBeDefined();
      await store.close();
    });

    it('a failed revokeGrant restores the revoked tokens', async () => {
      const faulty = faultyFs();
      const store = await open(dir, faulty.fs);
      await store.putTokens(access('a'), refresh('r'));
      faulty.fail('write');
      await expect(store.revokeGrant('grant-1')).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.getAccessToken(hashSecret('a'), NOW)).toBeDefined();
      expect(await store.getRefreshToken(hashSecret('r'), NOW)).toBeDefined();
      faulty.fail(undefined);
      expect(await store.revokeGrant('grant-1')).toBe(2);
      await store.close();
    });

    it('the grant index follows rollbacks and reopens: revokeGrant still finds every record of the grant', async () => {
      const faulty = faultyFs();
      const store = await open(dir, faulty.fs);
      await store.putTokens(access('a'), refresh('r'));
      faulty.fail('write');
      await expect(store.putTokens(access('b'), refresh('s'))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.revokeGrant('grant-1')).rejects.toBeInstanceOf(StoreUnavailableError);
      faulty.fail(undefined);
      await store.putCode(code('c'));
      await store.close();
      const reopened = await open(dir);
      await reopened.putTokens(access('d', { grantId: 'grant-2' }), undefined);
      expect(await reopened.clientCount()).toBe(0);
      expect(await reopened.revokeGrant('grant-1')).toBe(3);
      expect(await reopened.getAccessToken(hashSecret('d'), NOW)).toBeDefined();
      expect(await reopened.revokeGrant('grant-1')).toBe(0);
      await reopened.close();
    });

    it('a failed update restores the previous value, not nothing', async () => {
      const faulty = faultyFs();
      const store = await open(dir, faulty.fs);
      const original = clientRecord();
      await store.putClient(original);
      faulty.fail('fsync');
      await expect(store.putClient({ ...original, metadata: { ...original.metadata, client_name: 'changed' } })).rejects.toBeInstanceOf(
        StoreUnavailableError,
      );
      expect(await store.getClient(original.clientId)).toEqual(original);
      faulty.fail(undefined);
      await store.close();
    });

    it('changes queued behind a failing write are refused too, and all rolled back', async () => {
      const faulty = faultyFs();
      const store = await open(dir, faulty.fs);
      faulty.fail('write');
      const clients = Array.from({ length: 10 }, () => clientRecord());
      const results = await Promise.allSettled(clients.map((c) => store.putClient(c)));
      expect(results.every((r) => r.status === 'rejected' && r.reason instanceof StoreUnavailableError)).toBe(true);
      for (const c of clients) expect(await store.getClient(c.clientId)).toBeUndefined();
      faulty.fail(undefined);
      expect(await store.health()).toEqual({ ok: true });
      await store.close();
      const reopened = await open(dir);
      expect((await reopened.counts(NOW)).clients).toBe(0);
      await reopened.close();
    });

    it('health() retries the write itself and does not need a new request to heal', async () => {
      const faulty = faultyFs();
      const store = await open(dir, faulty.fs);
      faulty.fail('write');
      await expect(store.putClient(clientRecord())).rejects.toBeInstanceOf(StoreUnavailableError);
      const callsBefore = faulty.calls();
      expect((await store.health()).ok).toBe(false);
      expect(faulty.calls()).toBeGreaterThan(callsBefore);
      faulty.fail(undefined);
      expect((await store.health()).ok).toBe(true);
      await store.close();
    });
  });
});

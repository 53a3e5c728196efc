import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { runCli } from '../../../src/cli/run.js';
import { BACKUP_MANIFEST } from '../../../src/cli/backup.js';
import { readDataDir } from '../../../src/store/file/data-dir.js';
import { FileBackend } from '../../../src/store/file/file-backend.js';
import { cryptoRandom } from '../../../src/crypto/secrets.js';
import { captureIo } from '../../helpers/cli-io.js';
import { clientRecord, removeDir, silentLogger, tempDir } from '../../helpers/unit-context.js';

/**
 * The `kv` collection on disk: it shares the journal, and its snapshot file `kv.json`
 * appears only once it holds something, so data directories written before it existed
 * (or that never use it) load and look exactly as before.
 */

const NOW = Date.UTC(2026, 0, 1);
const open = async (dir: string): Promise<FileBackend> => (await FileBackend.open({ dataDir: dir, logger: silentLogger(), random: cryptoRandom })).backend;
const exists = (file: string): Promise<boolean> =>
  fsp.access(file).then(
    () => true,
    () => false,
  );

describe('kv.json', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('latchkey-kv-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('is not created while no entry was ever stored, and an old data directory without it loads', async () => {
    const first = await open(dir);
    await first.store.putClient(clientRecord({ clientId: 'c1' }));
    await first.close();
    expect(await exists(path.join(dir, 'kv.json'))).toBe(false);
    const state = await readDataDir(dir);
    expect(state.snapshots.kv).toEqual({ status: 'ok', seq: 0, bytes: 0, absent: true });
    expect(state.consistent).toBe(true);
    const again = await open(dir);
    expect(await again.store.getClient('c1')).toBeDefined();
    expect(await again.kv.list('any', NOW)).toEqual([]);
    await again.close();
  });

  it('holds the entries after a compaction, and an emptied collection is written empty', async () => {
    const first = await open(dir);
    await first.kv.put('sessions', 's1', 'alice', NOW + 60_000);
    await first.kv.put('sessions', 's2', 'bob', null);
    await first.close();
    const snapshot = JSON.parse(await fsp.readFile(path.join(dir, 'kv.json'), 'utf8')) as { records: unknown[] };
    expect(snapshot.records).toEqual([
      { namespace: 'sessions', key: 's1', value: 'alice', expiresAt: NOW + 60_000 },
      { namespace: 'sessions', key: 's2', value: 'bob', expiresAt: null },
    ]);
    expect((await fsp.stat(path.join(dir, 'kv.json'))).mode & 0o777).toBe(0o600);

    const second = await open(dir);
    expect(await second.kv.take('sessions', 's1', NOW)).toBe('alice');
    expect(await second.kv.delete('sessions', 's2')).toBe(true);
    await second.close();
    expect((JSON.parse(await fsp.readFile(path.join(dir, 'kv.json'), 'utf8')) as { records: unknown[] }).records).toEqual([]);
    const third = await open(dir);
    expect(await third.kv.list('sessions', NOW)).toEqual([]);
    await third.close();
  });

  it('is replayed from the journal after a crash (no clean stop)', async () => {
    const crashed = await open(dir);
    await crashed.kv.put('forms', 'f1', 'used', NOW + 60_000);
    // No close(): the process died. A restart on the same directory reads the journal.
    const state = await readDataDir(dir);
    expect([...state.collections.kv.values()]).toEqual([{ namespace: 'forms', key: 'f1', value: 'used', expiresAt: NOW + 60_000 }]);
    await crashed.close();
  });

  it('is in a backup with the other snapshots, and the restored copy has the entries', async () => {
    const backend = await open(dir);
    await backend.kv.put('routing', 'session-1', 'instance-a', null);
    await backend.audit.append({ at: NOW, type: 'client.registered', clientId: 'c1' });
    const key = await backend.consentKey();
    await backend.close();
    const target = await tempDir('latchkey-kv-backup-');
    const io = captureIo({ env: { OAUTH_DATA_DIR: dir } });
    expect(await runCli(['backup', target], io)).toBe(0);
    const copy = io.stdout.join('').trim();
    expect((await fsp.readdir(copy)).sort()).toEqual(
      ['audit', 'clients.json', 'codes.json', 'consent.key', 'kv.json', 'refresh_tokens.json', 'tokens.json', BACKUP_MANIFEST].sort(),
    );
    expect(await fsp.readdir(path.join(copy, 'audit'))).toEqual(['2026-01-01.jsonl']);
    const restored = await open(copy);
    expect(await restored.kv.get('routing', 'session-1', NOW)).toBe('instance-a');
    expect((await restored.consentKey()).equals(key)).toBe(true);
    expect(await restored.audit.list({ limit: 5 })).toEqual([{ at: NOW, type: 'client.registered', clientId: 'c1' }]);
    await restored.close();
    await removeDir(target);
  });
});

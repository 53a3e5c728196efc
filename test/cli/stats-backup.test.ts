import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BACKUP_MANIFEST } from '../../src/cli/backup.js';
import { runCli } from '../../src/cli/run.js';
import { AUDIT_DIR } from '../../src/store/file/audit-log.js';
import { FILES, type CollectionName } from '../../src/store/file/collections.js';
import { FileStore } from '../../src/store/file/file-store.js';
import { parseDataFile } from '../../src/store/file/snapshot.js';
import { createLogger } from '../../src/logger.js';
import { captureIo } from '../helpers/cli-io.js';
import { clientRecord, tokenPair } from '../helpers/records.js';
import { freePort, startApp, type RunningApp } from '../helpers/running-app.js';

const mode = (p: string): number => statSync(p).mode & 0o777;

describe('latchkey stats', () => {
  let app: RunningApp;
  beforeAll(async () => {
    app = await startApp();
    await app.services.store.putClient(clientRecord('c1', 'claudeai'));
    const { access, refresh } = tokenPair('c1', 'g1', 'a1', 'r1');
    await app.services.store.putTokens(access, refresh);
  });
  afterAll(() => app.stop());

  it('prints the running daemon counts as a table', async () => {
    const io = captureIo({ env: app.env });
    expect(await runCli(['stats'], io)).toBe(0);
    const out = io.stdout.join('');
    expect(out).toMatch(/registered clients +1\n/);
    expect(out).toMatch(/live access tokens +1\n/);
    expect(out).toMatch(/live refresh tokens +1\n/);
    expect(out).toMatch(/version +\d+\.\d+\.\d+/);
  });

  it('prints the JSON as served with --json, from --url: counts only, without the secret', async () => {
    const io = captureIo();
    expect(await runCli(['stats', '--json', '--url', `${app.baseUrl}/`], io)).toBe(0);
    expect(JSON.parse(io.stdout.join(''))).toEqual({ clients: 1, authorization_codes: 0, access_tokens: 1, refresh_tokens: 1 });
  });

  it('says what to check when no daemon answers', async () => {
    const port = await freePort();
    const io = captureIo({ env: { ...app.env, PORT: String(port), OAUTH_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'latchkey-nodaemon-')) } });
    expect(await runCli(['stats'], io)).toBe(1);
    expect(io.stderr.join('')).toContain(`no answer from http://127.0.0.1:${port} (ECONNREFUSED). Is Latchkey running?`);
  });
});

describe('latchkey backup', () => {
  let app: RunningApp;
  beforeEach(async () => {
    app = await startApp();
    await app.services.store.putClient(clientRecord('c1', 'claudeai'));
  });
  afterEach(() => app.stop());

  const backupDir = (): string => mkdtempSync(path.join(tmpdir(), 'latchkey-backups-'));

  it('copies every file into a new private directory with a manifest, and the copy opens as a store', async () => {
    const target = backupDir();
    const io = captureIo({ env: app.env });
    expect(await runCli(['backup', target], io)).toBe(0);
    const dir = io.stdout.join('').trim();
    expect(path.dirname(dir)).toBe(target);
    expect(path.basename(dir)).toMatch(/^latchkey-backup-\d{4}-\d\d-\d\dT/);
    expect(mode(dir)).toBe(0o700);
    const files = readdirSync(dir).sort();
    // The audit log has the daemon's start (config.loaded) in it from the first moment.
    expect(files).toEqual([...Object.values(FILES), 'consent.key', BACKUP_MANIFEST, AUDIT_DIR].sort());
    for (const f of files) expect(mode(path.join(dir, f))).toBe(f === AUDIT_DIR ? 0o700 : 0o600);
    expect(readdirSync(path.join(dir, AUDIT_DIR))).toEqual([expect.stringMatching(/^\d{4}-\d\d-\d\d\.jsonl$/)]);
    const manifest = JSON.parse(readFileSync(path.join(dir, BACKUP_MANIFEST), 'utf8')) as {
      files: Record<string, { sha256: string }>;
      counts: Record<string, number>;
    };
    expect(manifest.counts.clients).toBe(1);
    for (const [name, { sha256 }] of Object.entries(manifest.files)) {
      expect(createHash('sha256').update(readFileSync(path.join(dir, name))).digest('hex')).toBe(sha256);
    }
    // Restore = copy the files into an empty data directory: the daemon's store reads them.
    const restored = mkdtempSync(path.join(tmpdir(), 'latchkey-restored-'));
    for (const f of files.filter((x) => x !== BACKUP_MANIFEST && x !== AUDIT_DIR)) writeFileSync(path.join(restored, f), readFileSync(path.join(dir, f)));
    const { store, report } = await FileStore.open({ dataDir: restored, logger: createLogger('silent') });
    expect(report.setAside).toEqual([]);
    expect(await store.getClient('c1')).toMatchObject({ metadata: { client_name: 'claudeai' } });
    await store.close();
  });

  it('takes a snapshot in which every file parses while the daemon keeps writing', async () => {
    const target = backupDir();
    let writing = true;
    let n = 0;
    const writer = (async () => {
      // Bursts of changes touching several files at once, as code exchanges do.
      while (writing) {
        n++;
        await app.services.store.putClient(clientRecord(`c-${n}`, `client ${n}`));
        const { access, refresh } = tokenPair(`c-${n}`, `g-${n}`, `a-${n}`, `r-${n}`);
        await app.services.store.putTokens(access, refresh);
        // No quiet moment is needed: backup reads the snapshots plus the journal.
      }
    })();
    const io = captureIo({ env: app.env });
    const code = await runCli(['backup', target], io);
    writing = false;
    await writer;
    expect(code).toBe(0);
    const dir = io.stdout.join('').trim();
    const read = (name: CollectionName): string[] => {
      const parsed = parseDataFile(name, readFileSync(path.join(dir, FILES[name]), 'utf8'));
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.records.map((r) => ('clientId' in r ? r.clientId : ''));
    };
    const clients = new Set(read('clients'));
    // Consistent across files: no token belongs to a client the snapshot lacks.
    for (const owner of [...read('accessTokens'), ...read('refreshTokens')]) expect(clients.has(owner)).toBe(true);
    expect(n).toBeGreaterThan(1);
  });

  it('refuses to back up a file that does not parse, and writes nothing', async () => {
    writeFileSync(path.join(app.dataDir, 'codes.json'), 'not json');
    const target = backupDir();
    const io = captureIo({ env: app.env });
    expect(await runCli(['backup', target], io)).toBe(1);
    expect(io.stderr.join('')).toMatch(/codes\.json does not parse .*Run latchkey doctor/);
    expect(readdirSync(target)).toEqual([]);
  });

  it('explains an empty or wrong data directory, and a missing target', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'latchkey-empty-'));
    const io = captureIo({ env: app.env });
    expect(await runCli(['backup', backupDir(), '--data-dir', empty], io)).toBe(1);
    expect(io.stderr.join('')).toMatch(/no Latchkey data/);
    const usage = captureIo();
    expect(await runCli(['backup'], usage)).toBe(2);
    expect(usage.stderr.join('')).toMatch(/exactly one target directory/);
  });

  it('on PostgreSQL, points to pg_dump and latchkey export instead of copying a directory without the data', async () => {
    const target = backupDir();
    const io = captureIo({ env: { ...app.env, OAUTH_DATABASE_URL: 'postgres://latchkey:hunter2@db.example.com/latchkey' } });
    expect(await runCli(['backup', target], io)).toBe(1);
    const said = io.stderr.join('');
    expect(said).toMatch(/pg_dump/);
    expect(said).toMatch(/latchkey export/);
    expect(said).not.toContain('hunter2');
    expect(readdirSync(target)).toEqual([]);
  });

  it('is wired as the package bin', () => {
    const run = spawnSync(process.execPath, ['dist/cli.js', 'nonsense'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/unknown command "nonsense"/);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin.latchkey).toBe('dist/cli.js');
  });
});

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Runs scripts/install-systemd.sh for real, twice and then with --uninstall, into temporary
 * directories, with a stub in place of systemctl (there is no systemd PID 1 in CI). It
 * creates a system user, so it runs only as root, which CI is; elsewhere it is skipped.
 */
const SCRIPT = path.resolve('scripts/install-systemd.sh');
const USER = 'latchkey-test';
const isRoot = process.getuid?.() === 0;
const canRun = isRoot && spawnSync('useradd', ['--help']).status === 0 && existsSync('dist/cli.js');
if (!canRun) {
  process.stderr.write(
    `\n[skipped] install-systemd.sh test: needs root, useradd and a build (root: ${isRoot}, dist/cli.js: ${existsSync('dist/cli.js')})\n\n`,
  );
}

(canRun ? describe : describe.skip)('scripts/install-systemd.sh', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'latchkey-install-'));
  const dirs = {
    LATCHKEY_PREFIX: path.join(root, 'opt/latchkey'),
    LATCHKEY_ETC_DIR: path.join(root, 'etc/latchkey'),
    LATCHKEY_UNIT_DIR: path.join(root, 'etc/systemd/system'),
    LATCHKEY_STATE_DIR: path.join(root, 'var/lib/latchkey'),
    LATCHKEY_BIN_DIR: path.join(root, 'usr/local/bin'),
  };
  const systemctlLog = path.join(root, 'systemctl.log');
  const systemctl = path.join(root, 'systemctl');
  const userExisted = spawnSync('id', ['-u', USER]).status === 0;

  const run = (...args: string[]): SpawnSyncReturns<string> =>
    spawnSync('bash', [SCRIPT, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...dirs, LATCHKEY_USER: USER, LATCHKEY_SYSTEMCTL: systemctl },
      timeout: 240_000,
    });
  const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8).padStart(4, '0');

  beforeAll(() => {
    // The stub logs its calls and reports the service as not running.
    writeFileSync(systemctl, `#!/bin/sh\necho "$@" >> '${systemctlLog}'\n[ "$1" = is-active ] && exit 3\nexit 0\n`, { mode: 0o755 });
  });

  afterAll(() => {
    if (!userExisted) {
      spawnSync('userdel', [USER]);
      spawnSync('groupdel', [USER]);
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('installs the app, user, data directory, env file and unit', () => {
    const first = run();
    expect(first.stderr).not.toMatch(/error/);
    expect(first.status).toBe(0);
    expect(spawnSync('id', ['-u', USER]).status).toBe(0);

    expect(existsSync(path.join(dirs.LATCHKEY_PREFIX, 'dist/index.js'))).toBe(true);
    expect(existsSync(path.join(dirs.LATCHKEY_PREFIX, 'node_modules/express'))).toBe(true);
    // Production dependencies only.
    expect(existsSync(path.join(dirs.LATCHKEY_PREFIX, 'node_modules/typescript'))).toBe(false);

    expect(mode(dirs.LATCHKEY_STATE_DIR)).toBe('0700');
    const envFile = path.join(dirs.LATCHKEY_ETC_DIR, 'latchkey.env');
    expect(mode(envFile)).toBe('0640');
    const env = readFileSync(envFile, 'utf8');
    expect(env).toContain(`OAUTH_DATA_DIR=${dirs.LATCHKEY_STATE_DIR}`);
    expect(env).toContain('OAUTH_ISSUER_URL=');

    const unit = readFileSync(path.join(dirs.LATCHKEY_UNIT_DIR, 'latchkey.service'), 'utf8');
    expect(unit).toContain(`ExecStart=${process.execPath} --max-semi-space-size=32 ${dirs.LATCHKEY_PREFIX}/dist/index.js`);
    expect(unit).toContain(`EnvironmentFile=${envFile}`);
    expect(unit).toContain(`User=${USER}`);

    const cli = spawnSync(path.join(dirs.LATCHKEY_BIN_DIR, 'latchkey'), ['--help'], { encoding: 'utf8' });
    expect(cli.stdout).toContain('latchkey doctor');

    expect(readFileSync(systemctlLog, 'utf8')).toMatch(/daemon-reload\nenable latchkey.service/);
    expect(first.stdout).toContain('Edit');
  });

  it('is idempotent: a second run keeps the owner settings and the data', () => {
    const envFile = path.join(dirs.LATCHKEY_ETC_DIR, 'latchkey.env');
    appendFileSync(envFile, '\nOAUTH_ISSUER_URL=https://auth.example.com\n');
    const marker = path.join(dirs.LATCHKEY_STATE_DIR, 'clients.json');
    writeFileSync(marker, '{"version":1,"records":[]}');

    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).not.toContain('installing production dependencies');
    expect(readFileSync(envFile, 'utf8')).toContain('OAUTH_ISSUER_URL=https://auth.example.com');
    expect(existsSync(marker)).toBe(true);
  });

  it('--uninstall removes the service but keeps data and settings', () => {
    const out = run('--uninstall');
    expect(out.status).toBe(0);
    expect(existsSync(path.join(dirs.LATCHKEY_UNIT_DIR, 'latchkey.service'))).toBe(false);
    expect(existsSync(dirs.LATCHKEY_PREFIX)).toBe(false);
    expect(existsSync(path.join(dirs.LATCHKEY_BIN_DIR, 'latchkey'))).toBe(false);
    expect(existsSync(path.join(dirs.LATCHKEY_STATE_DIR, 'clients.json'))).toBe(true);
    expect(existsSync(path.join(dirs.LATCHKEY_ETC_DIR, 'latchkey.env'))).toBe(true);
    expect(readFileSync(systemctlLog, 'utf8')).toContain('disable --now latchkey.service');
  });
});

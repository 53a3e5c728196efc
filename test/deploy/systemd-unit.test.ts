import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const UNIT_PATH = path.resolve('scripts/latchkey.service');
const unitText = readFileSync(UNIT_PATH, 'utf8');

/** The unit's directives as [section, key, value] in file order (repeated keys kept). */
function directives(text: string): [string, string, string][] {
  const out: [string, string, string][] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    out.push([section, line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

const service = new Map<string, string[]>();
for (const [section, key, value] of directives(unitText)) {
  if (section === 'Service') service.set(key, [...(service.get(key) ?? []), value]);
}
const one = (key: string): string | undefined => service.get(key)?.at(-1);

describe('scripts/latchkey.service', () => {
  it('runs the daemon as a simple service that restarts on failure and drains on SIGTERM', () => {
    expect(one('Type')).toBe('simple');
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillSignal')).toBe('SIGTERM');
    // The daemon force-exits 10 s after SIGTERM; systemd must wait longer than that.
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(10);
    expect(one('ExecStart')).toMatch(/node --max-semi-space-size=32 .*\/dist\/index\.js$/);
    // systemctl reload: SIGHUP re-reads the gateway file (docs/gateway.md).
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  });

  it('reads settings from /etc/latchkey/latchkey.env and keeps state in /var/lib/latchkey', () => {
    expect(one('EnvironmentFile')).toBe('/etc/latchkey/latchkey.env');
    expect(one('StateDirectory')).toBe('latchkey');
    expect(one('StateDirectoryMode')).toBe('0700');
    expect(service.get('Environment')).toContain('OAUTH_DATA_DIR=/var/lib/latchkey');
  });

  it('runs as a dedicated unprivileged user with the hardening a reviewer expects', () => {
    expect(one('User')).toBe('latchkey');
    expect(one('Group')).toBe('latchkey');
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      CapabilityBoundingSet: '',
      AmbientCapabilities: '',
      UMask: '0077',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictNamespaces: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
      SystemCallArchitectures: 'native',
    };
    for (const [key, value] of Object.entries(expected)) expect([key, one(key)]).toEqual([key, value]);
    expect(service.get('SystemCallFilter')).toContain('@system-service');
    // V8's JIT needs W+X pages: this setting would crash node at startup.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });
});

/**
 * `systemd-analyze verify` loads the unit the way systemd would and reports unknown keys,
 * bad values and a missing ExecStart binary. It needs no running systemd, but some
 * containers lack it or forbid what it needs: then the test is skipped, saying why.
 */
function verifierProblem(): string | undefined {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error) return `systemd-analyze is not installed (${probe.error.message}); .ci/run installs the systemd package`;
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-unit-probe-'));
  const probeUnit = path.join(dir, 'probe.service');
  writeFileSync(probeUnit, `[Service]\nType=oneshot\nExecStart=${process.execPath} --version\n`);
  const run = spawnSync('systemd-analyze', ['verify', probeUnit], { encoding: 'utf8' });
  if (run.status !== 0) return `systemd-analyze cannot verify even a trivial unit here: ${(run.stderr || run.stdout).trim()}`;
  return undefined;
}

const problem = verifierProblem();
if (problem) process.stderr.write(`\n[skipped] systemd-analyze verify of latchkey.service: ${problem}\n\n`);

(problem ? describe.skip : describe)('systemd-analyze verify', () => {
  it('accepts scripts/latchkey.service without a warning', () => {
    // Verify the unit as the installer writes it on this machine: node where node is.
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-unit-'));
    const unit = path.join(dir, 'latchkey.service');
    writeFileSync(unit, unitText.replace('/usr/bin/node ', `${process.execPath} `));
    const run = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    const output = `${run.stdout}${run.stderr}`;
    const aboutUs = output.split('\n').filter((line) => line.includes('latchkey.service'));
    expect(aboutUs).toEqual([]);
    expect(run.status).toBe(0);
  });

  it('is the kind of check that catches a broken unit', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-unit-'));
    const unit = path.join(dir, 'latchkey.service');
    writeFileSync(unit, unitText.replace('/usr/bin/node ', '/nonexistent/node '));
    const run = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/not executable/);
  });
});

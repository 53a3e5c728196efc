/**
 * Configuration and files that could be turned against the owner stop the real daemon at
 * startup, with one line that names the problem and the fix, and nothing written.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DAEMON_ENTRY } from './daemon.js';

function start(env: Record<string, string>): { status: number | null; stderr: string } {
  const cwd = mkdtempSync(path.join(tmpdir(), 'latchkey-refusal-cwd-'));
  return runIn(cwd, env);
}

function runIn(cwd: string, env: Record<string, string>): { status: number | null; stderr: string } {
  const run = spawnSync(process.execPath, [DAEMON_ENTRY], {
    cwd,
    env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'silent', OAUTH_PIN: '24681357', ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: run.status, stderr: run.stderr };
}

describe('the daemon refuses to start', () => {
  it('on a data directory others can write, naming the fix, without touching it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-open-dir-'));
    chmodSync(dir, 0o777);
    const run = start({ OAUTH_DATA_DIR: dir });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([`latchkey: ${dir} (OAUTH_DATA_DIR) is writable by group and others (mode 0777), who could replace its data or consent key: chmod 700 ${dir}`]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ['TRUST_PROXY', 'true', /^latchkey: configuration error: TRUST_PROXY: true lets any client choose its own address; use loopback/],
    ['OAUTH_PIN', '12345', /^latchkey: configuration error: OAUTH_PIN: must be 6 to 128 characters without spaces$/],
  ])('with %s=%s, in one line', (name, value, line) => {
    const run = start({ OAUTH_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'latchkey-refusal-')), [name]: value });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });

  it.each([
    [{ files: { command: 'npx', args: '-y @modelcontextprotocol/server-filesystem /srv' } }, 'server "files", key "args": expected an array of strings'],
    [{ files: { command: 'npx', path: '/account' } }, 'server "files", key "path": "/account" collides with Latchkey\'s own endpoint /account'],
  ])('on a bad OAUTH_GATEWAY_CONFIG file, in one line naming the server and the key (%#)', (mcpServers, says) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-gateway-refusal-'));
    const file = path.join(dir, 'gateway.json');
    writeFileSync(file, JSON.stringify({ mcpServers }));
    const run = start({ OAUTH_DATA_DIR: path.join(dir, 'data'), OAUTH_GATEWAY_CONFIG: file });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toEqual([`latchkey: configuration error: OAUTH_GATEWAY_CONFIG (${file}): ${says}`]);
  });

  it('when another process answers on its control socket, rather than let `latchkey revoke` talk to it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-squat-'));
    const socket = path.join(dir, 'ctl.sock');
    const squatter = createServer(() => undefined);
    await new Promise<void>((resolve) => squatter.listen(socket, resolve));
    try {
      // spawnSync would block the squatter's event loop: run the daemon asynchronously.
      const run = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [DAEMON_ENTRY], {
          cwd: dir,
          env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'silent', OAUTH_PIN: '24681357', OAUTH_DATA_DIR: path.join(dir, 'data'), OAUTH_CONTROL_SOCKET: socket },
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
        child.on('exit', (status) => resolve({ status, stderr }));
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim().split('\n')).toEqual([`latchkey: another process answers on the control socket ${socket}: stop it, or give this daemon its own OAUTH_CONTROL_SOCKET`]);
    } finally {
      squatter.close();
    }
  });
});

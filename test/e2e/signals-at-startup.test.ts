/**
 * A signal that arrives while the real daemon is still starting is handled by Latchkey, never
 * by the signal's default action: systemd may reload (SIGHUP) or stop (SIGTERM) a service it
 * has just started, and a SIGHUP must not end a daemon that would have reloaded its file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DAEMON_ENTRY, freePort } from './daemon.js';

it('a SIGHUP while the store is still opening does not end the daemon', async () => {
  // A "database" that accepts connections and never answers: the start waits at the store, so
  // the signal surely comes after Latchkey's handlers are in place and before the start ends.
  const sockets = new Set<Socket>();
  let connected: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (connected = resolve));
  const database = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    connected();
  });
  const port = await freePort();
  await new Promise<void>((resolve) => database.listen(port, '127.0.0.1', resolve));
  try {
    const child = spawn(process.execPath, [DAEMON_ENTRY], {
      cwd: mkdtempSync(path.join(tmpdir(), 'latchkey-startup-signal-')),
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        LOG_LEVEL: 'silent',
        OAUTH_PIN: '24681357',
        OAUTH_DATABASE_URL: `postgres://latchkey:not-a-secret@127.0.0.1:${port}/latchkey`,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    await reached;
    // SIGHUP first: by its default action it would end the process at once. Then SIGTERM, which
    // a starting daemon remembers and serves by exiting 1 when the start cannot finish.
    child.kill('SIGHUP');
    child.kill('SIGTERM');
    expect({ exit: await exited, stderr }).toEqual({ exit: { code: 1, signal: null }, stderr: expect.any(String) });
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => database.close(() => resolve()));
  }
}, 60_000);

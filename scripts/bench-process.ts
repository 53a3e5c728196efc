/**
 * Starting and stopping the bench's server processes (dist-scripts/scripts/bench-server.js),
 * one per scenario so the load generator never shares a CPU-bound event loop with them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench-server.js');

/** Starts a bench server with `env` (BENCH_MODE and what it reads) and resolves with the port it listens on. */
export async function spawnBenchServer(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  // The flags `npm start`, the systemd unit and the Dockerfile run the daemon with (the ceiling
  // gets them too, so the ratios compare like with like), plus any given in BENCH_NODE_FLAGS.
  const flags = ['--max-semi-space-size=32', ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean)];
  // BENCH_CPU_PROF=<dir>: each server writes a V8 CPU profile of its measured life (from the
  // moment it listens, after the preparation) there; open it in Chrome DevTools.
  const prof = process.env.BENCH_CPU_PROF ? { BENCH_CPU_PROF: path.resolve(process.env.BENCH_CPU_PROF) } : {};
  const child = spawn(process.execPath, [...flags, SERVER], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ...prof },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`bench server exited with ${String(code)}`)));
  });
  return { child, port };
}

/**
 * Stops a bench server: SIGINT lets a profiling server write its profile, SIGTERM lets a
 * gateway end its child processes; a plain server is simply killed.
 */
export function stopBenchServer(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(process.env.BENCH_CPU_PROF ? 'SIGINT' : signal);
  });
}

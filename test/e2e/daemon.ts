import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs the real daemon (`node dist/index.js`) as a child process for the end-to-end tests:
 * start on a fixed port and data directory, wait for /healthz, stop with a signal and report
 * how it exited. Everything it prints is kept so a failing test can show it.
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DAEMON_ENTRY = path.join(ROOT, 'dist', 'index.js');

export { freePort } from '../helpers/free-port.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DaemonOptions {
  port: number;
  dataDir: string;
  /** Working directory of the child, so no stray .env is picked up. */
  cwd: string;
  /** Extra or overriding environment variables (OAUTH_PIN, TTLs, ...). */
  env: Record<string, string>;
  /** How long to wait for /healthz after spawning. */
  startTimeoutMs?: number;
}

export class Daemon {
  readonly baseUrl: string;
  /** Everything every run printed, stdout and stderr, in order. */
  readonly output: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  private runs = 0;

  constructor(private readonly options: DaemonOptions) {
    this.baseUrl = `http://127.0.0.1:${options.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawns the daemon and resolves once /healthz answers 200; rejects if it exits first. */
  async start(): Promise<void> {
    if (this.running) throw new Error('daemon already running');
    const run = ++this.runs;
    const child = spawn(process.execPath, [DAEMON_ENTRY], {
      cwd: this.options.cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: this.options.cwd,
        PORT: String(this.options.port),
        HOST: '127.0.0.1',
        OAUTH_ISSUER_URL: this.baseUrl,
        OAUTH_DATA_DIR: this.options.dataDir,
        LOG_LEVEL: 'warn',
        ...this.options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const record = (stream: string) => (chunk: Buffer) => {
      this.output.push(`[run ${run} ${stream}] ${chunk.toString('utf8')}`);
    };
    child.stdout?.on('data', record('stdout'));
    child.stderr?.on('data', record('stderr'));
    this.exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const exited = this.exited;

    const deadline = Date.now() + (this.options.startTimeoutMs ?? 15_000);
    let early: Exit | undefined;
    void exited.then((e) => {
      early = e;
    });
    for (;;) {
      if (early) {
        throw new Error(`daemon exited during startup (code ${String(early.code)}, signal ${String(early.signal)}):\n${this.log()}`);
      }
      try {
        const res = await fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
        if (res.status === 200) return;
        await res.arrayBuffer();
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`daemon did not become healthy in time:\n${this.log()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> {
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) throw new Error('daemon was never started');
    if (!this.running) return exited;
    child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`daemon did not exit within ${timeoutMs} ms of ${signal}:\n${this.log()}`)), timeoutMs);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, expect a clean exit 0, then start again on the same port and data directory. */
  async restart(): Promise<Exit> {
    const exit = await this.stop('SIGTERM');
    await this.start();
    return exit;
  }

  /** For afterAll: make sure no child outlives the tests, whatever happened. */
  async kill(): Promise<void> {
    if (this.running) await this.stop('SIGKILL', 5_000).catch(() => undefined);
  }

  log(): string {
    return this.output.join('');
  }
}

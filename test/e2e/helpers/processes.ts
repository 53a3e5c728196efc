import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The built daemon (one path for every end-to-end test: test/e2e/daemon.ts). */
export { DAEMON_ENTRY as LATCHKEY_ENTRY } from '../daemon.js';
export const DEMO_SERVER_ENTRY = path.join(ROOT, 'dist-scripts', 'scripts', 'demo-mcp-server.js');

export { freePort } from '../../helpers/free-port.js';

/** Polls until `url` answers 2xx; gives up after `attempts` tries with the process output. */
async function waitUntilUp(url: string, child: ChildProcess, output: () => string, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before answering ${url}:\n${output()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${url} never answered:\n${output()}`);
}

/** A child process on loopback that can be stopped (SIGTERM) and started again with other settings. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private log = '';

  constructor(
    private readonly entry: string,
    private env: Record<string, string>,
    private readonly readyUrl: string,
  ) {
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);
  }

  async start(overrides: Record<string, string> = {}): Promise<void> {
    this.env = { ...this.env, ...overrides };
    this.log = '';
    const child = spawn(process.execPath, [this.entry], {
      env: { PATH: process.env.PATH ?? '', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.child = child;
    await waitUntilUp(this.readyUrl, child, () => this.log);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) throw new Error(`process exited with ${code} on SIGTERM:\n${this.log}`);
  }

  async restart(overrides: Record<string, string> = {}): Promise<void> {
    await this.stop();
    await this.start(overrides);
  }

  output(): string {
    return this.log;
  }
}

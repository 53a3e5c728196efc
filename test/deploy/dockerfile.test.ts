import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createServices } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';

/**
 * No Docker engine runs here, so the Dockerfile is checked as text: the instructions a
 * reviewer looks for, per stage. The HEALTHCHECK command itself is run against a real app.
 */
interface Instruction {
  op: string;
  args: string;
}

function parseDockerfile(text: string): Instruction[][] {
  const joined = text.replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const raw of joined.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = (m[1] ?? '').toUpperCase();
    const args = (m[2] ?? '').replace(/\s+/g, ' ');
    if (op === 'FROM') stages.push([]);
    (stages.at(-1) ?? (stages[0] = []))?.push({ op, args });
  }
  return stages;
}

const text = readFileSync('Dockerfile', 'utf8');
const stages = parseDockerfile(text);
const runtime = stages.at(-1) ?? [];
const build = stages[stages.length - 2] ?? [];
const all = (stage: Instruction[], op: string): string[] => stage.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('is multi-stage on an LTS Node image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(all(build, 'FROM')[0]).toMatch(/^node:\$\{NODE_VERSION\}-\S+ AS build$/);
    const version = /ARG NODE_VERSION=(\d+)/.exec(text)?.[1];
    // Even major versions are the LTS lines.
    expect(Number(version) % 2).toBe(0);
    expect(Number(version)).toBeGreaterThanOrEqual(20);
  });

  it('installs only production dependencies without running the TypeScript build, and copies dist from the build stage', () => {
    const runs = all(runtime, 'RUN').join('\n');
    expect(runs).toMatch(/npm ci --omit=dev --ignore-scripts/);
    expect(all(runtime, 'COPY')).toContain('--from=build /app/dist ./dist');
    expect(all(runtime, 'COPY').some((c) => /\bsrc\b/.test(c))).toBe(false);
  });

  it('runs as a non-root user with /data as the data volume', () => {
    const user = all(runtime, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    expect(all(runtime, 'VOLUME').join(' ')).toContain('/data');
    expect(all(runtime, 'ENV').join(' ')).toMatch(/OAUTH_DATA_DIR=\/data/);
    // The user must come after every step that needs root.
    const userIndex = runtime.findIndex((i) => i.op === 'USER');
    expect(runtime.slice(userIndex).some((i) => i.op === 'RUN')).toBe(false);
  });

  it('has a HEALTHCHECK on /healthz and stops with SIGTERM', () => {
    expect(all(runtime, 'HEALTHCHECK')[0]).toContain('/healthz');
    expect(all(runtime, 'STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(all(runtime, 'CMD').at(-1)).toBe('["node", "--max-semi-space-size=32", "dist/index.js"]');
  });

  it('bakes in no secret and copies no settings or state', () => {
    for (const stage of stages) {
      for (const i of stage.filter((x) => x.op === 'ENV' || x.op === 'ARG')) {
        expect(i.args).not.toMatch(/PIN|SECRET|PASSWORD|TOKEN|KEY/i);
      }
      for (const copy of all(stage, 'COPY')) expect(copy).not.toMatch(/\.env|\.oauth_data|^\. /);
    }
    const ignore = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['.env', '.env.*', '.oauth_data', 'node_modules', '.git']) expect(ignore).toContain(entry);
  });
});

describe('the HEALTHCHECK command', () => {
  const exec = JSON.parse(/HEALTHCHECK[^\n]*\n\s*CMD (\[.*\])/.exec(text)?.[1] ?? '[]') as string[];

  const runCheck = (port: number): Promise<number | null> =>
    new Promise((resolve) => {
      const child = spawn(exec[0] === 'node' ? process.execPath : (exec[0] ?? ''), exec.slice(1), {
        env: { ...process.env, PORT: String(port) },
      });
      child.on('exit', (code) => resolve(code));
    });

  it('passes while the daemon is healthy and fails when nothing listens', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-health-'));
    const config = loadConfig({ OAUTH_DATA_DIR: dataDir, OAUTH_PIN: '246810', LOG_LEVEL: 'silent' });
    const services = await createServices(config, createLogger('silent'));
    const server = await new Promise<Server>((resolve) => {
      const s = services.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const port = (server.address() as AddressInfo).port;
    try {
      expect(exec[0]).toBe('node');
      expect(await runCheck(port)).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.backend.close();
    }
    expect(await runCheck(port)).toBe(1);
  });
});

/**
 * `npm run demo`: starts Latchkey and the demo MCP server together, wired to each other,
 * and prints the URL to paste into an MCP host. Ctrl-C stops both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

dotenv.config({ quiet: true, path: path.join(ROOT, '.env') });
const env = process.env;
const latchkeyPort = env.PORT ?? '3000';
const demoPort = env.DEMO_PORT ?? '3001';
const issuer = env.OAUTH_ISSUER_URL ?? `http://localhost:${latchkeyPort}`;
const mcpUrl = env.DEMO_MCP_URL ?? `http://localhost:${demoPort}/mcp`;
// A throwaway secret is enough when both sides are started here and share it.
const secret = env.OAUTH_INTROSPECTION_SECRET ?? randomBytes(32).toString('hex');
const resources = env.OAUTH_RESOURCES ?? mcpUrl;

const children: ChildProcess[] = [];
let stopping = false;

function start(script: string, extraEnv: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [path.join(ROOT, script)], {
    cwd: ROOT,
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('exit', (code) => {
    if (stopping) return;
    process.stderr.write(`demo: ${script} exited with ${code ?? 'a signal'}; stopping\n`);
    stop(1);
  });
  children.push(child);
  return child;
}

function stop(code: number): void {
  stopping = true;
  let left = children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  if (left === 0) process.exit(code);
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.once('exit', () => {
      left -= 1;
      if (left === 0) process.exit(code);
    });
    child.kill('SIGTERM');
  }
}

async function waitFor(url: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer`);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => stop(0));
  process.on('SIGTERM', () => stop(0));
  start('dist/index.js', {
    PORT: latchkeyPort,
    OAUTH_ISSUER_URL: issuer,
    OAUTH_RESOURCES: resources,
    OAUTH_INTROSPECTION_SECRET: secret,
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
  });
  start('dist-scripts/scripts/demo-mcp-server.js', {
    DEMO_PORT: demoPort,
    DEMO_MCP_URL: mcpUrl,
    LATCHKEY_ISSUER_URL: issuer,
    LATCHKEY_INTROSPECTION_URL: env.LATCHKEY_INTROSPECTION_URL ?? `http://127.0.0.1:${latchkeyPort}/introspect`,
    OAUTH_INTROSPECTION_SECRET: secret,
  });
  const mcpOrigin = new URL(mcpUrl);
  await waitFor(`http://127.0.0.1:${latchkeyPort}/healthz`);
  await waitFor(`http://127.0.0.1:${demoPort}/.well-known/oauth-protected-resource${mcpOrigin.pathname}`);
  process.stdout.write(
    [
      '',
      '  Latchkey demo is running.',
      '',
      `  MCP server URL, paste it into your connector:  ${mcpUrl}`,
      `  Authorization server (Latchkey):              ${issuer}`,
      '',
      '  Approve the connection with the PIN shown above (or your OAUTH_PIN).',
      `  Quick check: curl -i -X POST ${mcpUrl}   answers 401 with resource_metadata=…`,
      '  Claude and ChatGPT need public https URLs: set OAUTH_ISSUER_URL and DEMO_MCP_URL to your tunnel URLs.',
      '  Ctrl-C stops both.',
      '',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  stop(1);
});

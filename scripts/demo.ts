/**
 * `npm run demo`: Latchkey in gateway mode with two MCP servers behind it, and the connector
 * URLs and PIN to paste. The gateway file it writes has the demo MCP server
 * (scripts/demo-mcp-server.ts, an HTTP server without auth of its own) and
 * @modelcontextprotocol/server-everything over stdio (one process per session).
 *
 * `npm run demo -- --kit` runs the resource-server kit instead: the demo MCP server checks
 * tokens itself against Latchkey's /introspect (docs/protecting-mcp-servers.md).
 * Ctrl-C stops everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

dotenv.config({ quiet: true, path: path.join(ROOT, '.env') });
const env = process.env;
const latchkeyPort = env.PORT ?? '3000';
const demoPort = env.DEMO_PORT ?? '3001';
const issuer = env.OAUTH_ISSUER_URL ?? `http://localhost:${latchkeyPort}`;
const kit = process.argv.includes('--kit');

const children: ChildProcess[] = [];
const cleanups: (() => void)[] = [];
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
  const exit = (): never => {
    for (const cleanup of cleanups) cleanup();
    process.exit(code);
  };
  let left = children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  if (left === 0) exit();
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.once('exit', () => {
      left -= 1;
      if (left === 0) exit();
    });
    child.kill('SIGTERM');
  }
}

/** Polls until `url` answers: with any status when `anyStatus`, else with a 2xx. */
async function waitFor(url: string, anyStatus = false): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const res = await fetch(url);
      if (anyStatus || res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer`);
}

/** server-everything from this checkout when installed (a dev dependency), else by npx. */
function everythingServer(): { command: string; args: string[] } {
  try {
    const pkg = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json');
    return { command: process.execPath, args: [path.join(path.dirname(pkg), 'dist', 'index.js'), 'stdio'] };
  } catch {
    return { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything', 'stdio'] };
  }
}

/** The PIN to approve with: the configured one, or a fresh one for this run, passed to Latchkey. */
function demoPin(): { pin: string | undefined; extraEnv: Record<string, string> } {
  if (env.OAUTH_PIN_HASH) return { pin: undefined, extraEnv: {} };
  if (env.OAUTH_PIN) return { pin: env.OAUTH_PIN, extraEnv: {} };
  const pin = String(randomInt(0, 100_000_000)).padStart(8, '0');
  return { pin, extraEnv: { OAUTH_PIN: pin } };
}

async function gatewayDemo(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-demo-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const gatewayFile = path.join(dir, 'gateway.json');
  const servers = {
    demo: { url: `http://127.0.0.1:${demoPort}/mcp` },
    everything: everythingServer(),
  };
  writeFileSync(gatewayFile, `${JSON.stringify({ mcpServers: servers }, null, 2)}\n`);
  const { pin, extraEnv } = demoPin();
  start('dist-scripts/scripts/demo-mcp-server.js', { DEMO_AUTH: 'none', DEMO_PORT: demoPort, DEMO_HOST: '127.0.0.1', DEMO_MCP_URL: `http://127.0.0.1:${demoPort}/mcp` });
  await waitFor(`http://127.0.0.1:${demoPort}/mcp`, true);
  start('dist/index.js', {
    PORT: latchkeyPort,
    OAUTH_ISSUER_URL: issuer,
    OAUTH_GATEWAY_CONFIG: gatewayFile,
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
    ...extraEnv,
  });
  await waitFor(`http://127.0.0.1:${latchkeyPort}/healthz`);
  await waitFor(`http://127.0.0.1:${latchkeyPort}/.well-known/oauth-protected-resource/demo/mcp`);
  process.stdout.write(
    [
      '',
      '  Latchkey demo is running: two MCP servers behind its gateway.',
      '',
      `  Gateway file (OAUTH_GATEWAY_CONFIG): ${gatewayFile}`,
      '  Connector URLs, paste one into your MCP host:',
      `    demo        ${issuer}/demo/mcp         scripts/demo-mcp-server.ts over HTTP (tool whoami)`,
      `    everything  ${issuer}/everything/mcp   server-everything over stdio, one process per session`,
      '',
      pin !== undefined ? `  PIN to approve the connection: ${pin}` : '  Approve the connection with your PIN (OAUTH_PIN_HASH is set).',
      `  Owner's page: ${issuer}/admin (same PIN)`,
      `  Quick check: curl -i -X POST ${issuer}/demo/mcp   answers 401 with resource_metadata=…`,
      '  Claude and ChatGPT need a public https URL: put Latchkey behind a tunnel and set OAUTH_ISSUER_URL to it.',
      '  Ctrl-C stops everything.',
      '',
      '',
    ].join('\n'),
  );
}

async function kitDemo(): Promise<void> {
  const mcpUrl = env.DEMO_MCP_URL ?? `http://localhost:${demoPort}/mcp`;
  // A throwaway secret is enough when both sides are started here and share it.
  const secret = env.OAUTH_INTROSPECTION_SECRET ?? randomBytes(32).toString('hex');
  start('dist/index.js', {
    PORT: latchkeyPort,
    OAUTH_ISSUER_URL: issuer,
    OAUTH_RESOURCES: env.OAUTH_RESOURCES ?? mcpUrl,
    OAUTH_INTROSPECTION_SECRET: secret,
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
  });
  start('dist-scripts/scripts/demo-mcp-server.js', {
    DEMO_AUTH: 'kit',
    DEMO_PORT: demoPort,
    DEMO_MCP_URL: mcpUrl,
    LATCHKEY_ISSUER_URL: issuer,
    LATCHKEY_INTROSPECTION_URL: env.LATCHKEY_INTROSPECTION_URL ?? `http://127.0.0.1:${latchkeyPort}/introspect`,
    OAUTH_INTROSPECTION_SECRET: secret,
  });
  await waitFor(`http://127.0.0.1:${latchkeyPort}/healthz`);
  await waitFor(`http://127.0.0.1:${demoPort}/.well-known/oauth-protected-resource${new URL(mcpUrl).pathname}`);
  process.stdout.write(
    [
      '',
      '  Latchkey demo is running (resource-server kit: the MCP server checks tokens itself).',
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

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
(kit ? kitDemo() : gatewayDemo()).catch((err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).message}\n`);
  stop(1);
});

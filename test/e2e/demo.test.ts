/**
 * `npm run demo` as a new user runs it: the built demo script starts Latchkey in gateway mode
 * with the demo MCP server (HTTP, no auth of its own) and server-everything (stdio) behind
 * it, and prints the connector URLs and the PIN. The MCP SDK client, with its OAuth provider,
 * connects to both through the whole flow with that PIN alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectMcp, type Connection } from '../gateway/helpers/oauth-client.js';
import { commandLine, descendants, waitFor, waitUntilGone } from '../gateway/helpers/proc.js';
import { freePort } from './helpers/processes.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEMO_ENTRY = path.join(ROOT, 'dist-scripts', 'scripts', 'demo.js');

let demo: ChildProcess;
let output = '';
let dataDir: string;
const connections: Connection[] = [];

const printed = (pattern: RegExp): string => pattern.exec(output)?.[1] ?? '';
const text = (result: unknown): string => (result as { content: { text: string }[] }).content[0]?.text ?? '';

beforeAll(async () => {
  if (!existsSync(DEMO_ENTRY)) throw new Error(`${DEMO_ENTRY} is missing: run npm run build first`);
  dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-demo-test-'));
  const [port, demoPort] = await Promise.all([freePort(), freePort()]);
  demo = spawn(process.execPath, [DEMO_ENTRY], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: String(port),
      DEMO_PORT: String(demoPort),
      OAUTH_ISSUER_URL: `http://127.0.0.1:${port}`,
      OAUTH_DATA_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  demo.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(() => output.includes('Ctrl-C stops everything.') || demo.exitCode !== null, 'the demo to print its connector URLs', 60_000);
  if (demo.exitCode !== null) throw new Error(`the demo exited with ${demo.exitCode}:\n${output}`);
}, 90_000);

afterAll(async () => {
  for (const c of connections) await c.client.close();
  if (demo?.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm run demo (gateway mode)', () => {
  it('prints the gateway file it runs, the connector URLs and the PIN', () => {
    const file = printed(/Gateway file \(OAUTH_GATEWAY_CONFIG\): (\S+)/);
    const servers = (JSON.parse(readFileSync(file, 'utf8')) as { mcpServers: Record<string, { url?: string; command?: string; args?: string[] }> }).mcpServers;
    expect(Object.keys(servers).sort()).toEqual(['demo', 'everything']);
    expect(servers.demo?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
    expect(servers.everything?.args).toContain('stdio');
    expect(printed(/^\s+demo\s+(http\S+)/m)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/demo\/mcp$/);
    expect(printed(/^\s+everything\s+(http\S+)/m)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/everything\/mcp$/);
    expect(printed(/PIN to approve the connection: (\d{8})/)).toMatch(/^\d{8}$/);
  });

  it('the demo MCP server, behind the gateway, knows the caller only from Latchkey', async () => {
    const connection = await connectMcp(printed(/^\s+demo\s+(http\S+)/m), printed(/PIN to approve the connection: (\d+)/));
    connections.push(connection);
    const caller = JSON.parse(text(await connection.client.callTool({ name: 'whoami' }))) as Record<string, unknown>;
    expect(caller).toEqual({
      client_id: connection.provider.client?.client_id,
      client_name: 'latchkey e2e host',
      scopes: ['mcp'],
      via: 'latchkey gateway',
    });
  });

  it('server-everything over stdio: its tools through the gateway, one process per session', async () => {
    const connection = await connectMcp(printed(/^\s+everything\s+(http\S+)/m), printed(/PIN to approve the connection: (\d+)/));
    connections.push(connection);
    const tools = (await connection.client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    expect(text(await connection.client.callTool({ name: 'echo', arguments: { message: 'from the demo' } }))).toContain('from the demo');
    const servers = descendants(demo.pid ?? 0).filter((pid) => commandLine(pid).includes('server-everything'));
    expect(servers.length).toBeGreaterThan(0);

    // Ctrl-C stops everything: Latchkey ends its stdio children, the demo removes its file.
    const file = printed(/Gateway file \(OAUTH_GATEWAY_CONFIG\): (\S+)/);
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    demo.kill('SIGINT');
    expect(await exited).toBe(0);
    await waitUntilGone(servers);
    expect(existsSync(file)).toBe(false);
  }, 60_000);
});

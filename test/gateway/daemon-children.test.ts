/**
 * The real daemon (`node dist/index.js`) with a stdio server behind its gateway: what its
 * children inherit, SIGHUP, and that no child survives the daemon, whether it stops on
 * SIGTERM or is killed with SIGKILL (which runs no cleanup code). Processes are read from
 * /proc, not from anything the daemon reports.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Daemon, freePort } from '../e2e/daemon.js';
import { connectMcp, type Connection } from './helpers/oauth-client.js';
import { commandLine, descendants, isAlive, processGroupOf, waitFor, waitUntilGone } from './helpers/proc.js';
import { EVERYTHING } from '../helpers/everything.js';

const PIN = '13572468';
const everything = { command: process.execPath, args: [EVERYTHING, 'stdio'], env: { GATEWAY_TEST_VAR: 'configured' } };
/** Ignores SIGTERM and its stdin closing, and runs a child of its own: only the group's SIGKILL ends it. */
const stubborn = { command: process.execPath, args: [fileURLToPath(new URL('./fixtures/stubborn-stdio-server.mjs', import.meta.url))] };

let dir: string;
let configFile: string;
let daemon: Daemon;
const connections: Connection[] = [];

const text = (result: unknown): string => (result as { content: { text: string }[] }).content[0]?.text ?? '';
const serverPids = (): number[] => descendants(daemon.pid ?? 0).filter((pid) => commandLine(pid).startsWith(`${process.execPath} ${EVERYTHING}`));

async function connect(p = '/everything/mcp'): Promise<Connection> {
  const connection = await connectMcp(`${daemon.baseUrl}${p}`, PIN);
  connections.push(connection);
  return connection;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-gateway-daemon-'));
  configFile = path.join(dir, 'gateway.json');
  writeFileSync(configFile, JSON.stringify({ mcpServers: { everything } }));
  daemon = new Daemon({
    port: await freePort(),
    dataDir: path.join(dir, 'data'),
    cwd: dir,
    env: { OAUTH_PIN: PIN, OAUTH_INTROSPECTION_SECRET: 'a-secret-the-children-must-not-see', OAUTH_GATEWAY_CONFIG: configFile, LOG_LEVEL: 'info' },
  });
  await daemon.start();
});

afterAll(async () => {
  for (const c of connections) await c.client.close().catch(() => undefined);
  await daemon?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('the daemon and its gateway children', () => {
  it('a child gets its configured env plus PATH and HOME, none of Latchkey’s settings or secrets', async () => {
    const c = await connect();
    const env = JSON.parse(text(await c.client.callTool({ name: 'get-env' }))) as Record<string, string>;
    expect(Object.keys(env).sort()).toEqual(['GATEWAY_TEST_VAR', 'HOME', 'PATH']);
    expect(JSON.stringify(env)).not.toContain(PIN);
    expect(JSON.stringify(env)).not.toContain('a-secret-the-children-must-not-see');
    expect(daemon.log()).toContain('"gatewayServer":"everything"');
  });

  it('SIGHUP re-reads the file: a new server appears, the live session and its process stay', async () => {
    const [c] = connections;
    const before = serverPids();
    expect(before).toHaveLength(1);
    writeFileSync(configFile, JSON.stringify({ mcpServers: { everything, stubborn } }));
    process.kill(daemon.pid ?? 0, 'SIGHUP');
    await waitFor(async () => (await fetch(`${daemon.baseUrl}/.well-known/oauth-protected-resource/stubborn/mcp`)).status === 200, 'the new server after SIGHUP');
    expect(text(await c?.client.callTool({ name: 'echo', arguments: { message: 'kept' } }))).toContain('kept');
    expect(serverPids()).toEqual(before);
    const s = await connect('/stubborn/mcp');
    expect(isAlive(Number(text(await s.client.callTool({ name: 'helper-pid' }))))).toBe(true);
    // The reload is in the audit log, as the start was.
    const auditDir = path.join(dir, 'data', 'audit');
    const lines = readdirSync(auditDir).flatMap((f) => readFileSync(path.join(auditDir, f), 'utf8').split('\n').filter((l) => l !== ''));
    const reloaded = lines.map((l) => JSON.parse(l) as { type: string; detail?: Record<string, unknown> }).filter((e) => e.type === 'config.reloaded');
    expect(reloaded).toEqual([expect.objectContaining({ detail: { added: ['stubborn'], removed: [], changed: [] } })]);
  });

  it('SIGTERM: the daemon exits 0 and no child is left', async () => {
    const children = descendants(daemon.pid ?? 0);
    const servers = serverPids();
    expect(servers).toHaveLength(1);
    // Supervisors, their watchers, the servers and the stubborn one's helper.
    expect(children.length).toBeGreaterThanOrEqual(7);
    for (const pid of servers) expect(processGroupOf(pid)).not.toBe(processGroupOf(daemon.pid ?? 0));
    const exit = await daemon.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    await waitUntilGone(children);
  });

  it('kill -9: the children die with the daemon, within the supervisor grace time', async () => {
    await daemon.start();
    for (const c of connections.splice(0)) await c.client.close().catch(() => undefined);
    await connect();
    const s = await connect('/stubborn/mcp');
    const helper = Number(text(await s.client.callTool({ name: 'helper-pid' })));
    const children = descendants(daemon.pid ?? 0);
    expect(children).toContain(helper);
    expect(children.length).toBeGreaterThanOrEqual(7);
    expect(children.every(isAlive)).toBe(true);
    const exit = await daemon.stop('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    // Nobody told the children anything: the lifeline's end of file does it.
    await waitUntilGone(children, 20_000);
  }, 60_000);
});

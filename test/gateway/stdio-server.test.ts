/**
 * The gateway in front of a stdio MCP server: @modelcontextprotocol/server-everything, the
 * MCP project's own reference server, run as a real child process per session. The client
 * is the MCP SDK client through the whole OAuth flow.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { GatewayConfigError } from '../../src/gateway/index.js';
import { SESSION_NOT_FOUND } from '../../src/gateway/json-rpc.js';
import { hashSecret } from '../../src/crypto/secrets.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { tokenPair } from '../helpers/records.js';
import { startGatewayApp, PIN, type GatewayApp } from './helpers/gateway-app.js';
import { accessToken, connectMcp, mcpPost, INITIALIZE, type Connection } from './helpers/oauth-client.js';
import { commandLine, descendants, isAlive, processGroupOf, waitFor, waitUntilGone } from './helpers/proc.js';
import { EVERYTHING } from '../helpers/everything.js';


const clock = new FakeClock(Date.now());
let app: GatewayApp;
let first: Connection;
let second: Connection | undefined;

const everything = {
  command: process.execPath,
  args: [EVERYTHING, 'stdio'],
  env: { GATEWAY_TEST_VAR: 'configured' },
  tools: { deny: ['toggle-*', 'get-tiny-image'] },
  alwaysAllow: ['echo'],
};
const broken = { command: process.execPath, args: ['-e', 'process.exit(3)'] };

const url = (p: string): string => `${app.baseUrl}${p}`;
const text = (result: unknown): string => (result as { content: { text: string }[] }).content[0]?.text ?? '';
/** The server-everything processes this test process runs (through the gateway's supervisors). */
const serverPids = (): number[] => descendants(process.pid).filter((pid) => commandLine(pid).startsWith(`${process.execPath} ${EVERYTHING}`));
const status = () => app.gateway.status().find((s) => s.name === 'everything');

beforeAll(async () => {
  app = await startGatewayApp({ mcpServers: { everything, broken } }, { clock, env: { OAUTH_GATEWAY_IDLE_TIMEOUT: '1', OAUTH_GATEWAY_MAX_PROCESSES: '2' } });
  first = await connectMcp(url('/everything/mcp'), PIN);
});

afterAll(async () => {
  await first?.client.close();
  await second?.client.close();
  await app?.stop();
});

describe('gateway to a stdio MCP server (server-everything)', () => {
  it('lists its tools minus the denied ones, and calls them', async () => {
    const tools = (await first.client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-env', 'trigger-long-running-operation']));
    expect(tools.filter((t) => t.startsWith('toggle-') || t === 'get-tiny-image')).toEqual([]);
    expect(text(await first.client.callTool({ name: 'echo', arguments: { message: 'through the gateway' } }))).toContain('through the gateway');
    expect(text(await first.client.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } }))).toContain('42');
    await expect(first.client.callTool({ name: 'get-tiny-image' })).rejects.toMatchObject({ code: -32602 });
  });

  it('passes progress of a long-running tool while it runs', async () => {
    const progress: number[] = [];
    let openAtFirst = 0;
    const result = await first.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 3 } }, undefined, {
      onprogress: (p) => {
        if (progress.length === 0) openAtFirst = status()?.openRequests ?? 0;
        progress.push(p.progress);
      },
    });
    expect(text(result)).toContain('Long running operation completed');
    expect(progress).toEqual([1, 2, 3]);
    // The first notification reached the client while the call was still open in the gateway.
    expect(openAtFirst).toBe(1);
  });

  it('serves its resources and prompts', async () => {
    const resources = (await first.client.listResources()).resources;
    expect(resources.length).toBeGreaterThan(0);
    const read = await first.client.readResource({ uri: resources[0]?.uri ?? '' });
    expect(read.contents[0]?.uri).toBe(resources[0]?.uri);
    const prompts = (await first.client.listPrompts()).prompts.map((p) => p.name);
    expect(prompts).toEqual(expect.arrayContaining(['simple-prompt', 'args-prompt']));
    const prompt = await first.client.getPrompt({ name: 'simple-prompt' });
    expect(prompt.messages.length).toBeGreaterThan(0);
  });

  it('gives the child only its configured env plus PATH and HOME', async () => {
    const env = JSON.parse(text(await first.client.callTool({ name: 'get-env' }))) as Record<string, string>;
    expect(Object.keys(env).sort()).toEqual(['GATEWAY_TEST_VAR', 'HOME', 'PATH']);
    expect(env.GATEWAY_TEST_VAR).toBe('configured');
    expect(env.PATH).toBe(process.env.PATH);
  });

  it('logs the child stderr tagged with the server name', () => {
    const lines = app.logs.map((l) => JSON.parse(l) as { gatewayServer?: string; stderr?: string });
    expect(lines).toContainEqual(expect.objectContaining({ gatewayServer: 'everything', stderr: 'Starting default (STDIO) server...' }));
    expect(app.logs.join('')).toContain('ignoring keys Latchkey does not use: everything.alwaysAllow');
  });

  it('gives two sessions two processes, each in its own process group; past the cap answers 503', async () => {
    const [firstPid] = serverPids();
    second = await connectMcp(url('/everything/mcp'), PIN);
    const pids = serverPids();
    expect(pids).toHaveLength(2);
    expect(status()).toEqual(expect.objectContaining({ sessions: 2, processes: 2 }));
    for (const pid of pids) expect(processGroupOf(pid)).not.toBe(processGroupOf(process.pid));
    expect(processGroupOf(pids[0] ?? 0)).not.toBe(processGroupOf(pids[1] ?? 0));
    expect(firstPid).toBeDefined();

    const refused = await mcpPost(url('/everything/mcp'), accessToken(first), INITIALIZE);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(((await refused.json()) as { id: number; error: { message: string } }).error.message).toContain('already runs 2 sessions');
    expect(serverPids()).toHaveLength(2);
  });

  it('binds a session to the approval that started it: another client\'s token, or another approval of the same client, with its Mcp-Session-Id gets 404', async () => {
    const owner = first;
    const other = second;
    if (!other) throw new Error('the second session is not open');
    expect(other.provider.client?.client_id).not.toBe(owner.provider.client?.client_id);
    const session = owner.transport.sessionId ?? '';
    const intruder = accessToken(other);
    const headers = { authorization: `Bearer ${intruder}`, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };

    const call = await mcpPost(url('/everything/mcp'), intruder, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hijacked' } } }, headers);
    expect(call.status).toBe(404);
    expect(await call.json()).toEqual({ jsonrpc: '2.0', id: 7, error: { code: SESSION_NOT_FOUND, message: 'Session not found: start a new session with initialize' } });
    const stream = await fetch(url('/everything/mcp'), { headers: { ...headers, accept: 'text/event-stream' } });
    expect(stream.status).toBe(404);
    await stream.body?.cancel();
    const deleted = await fetch(url('/everything/mcp'), { method: 'DELETE', headers });
    expect(deleted.status).toBe(404);

    // Its owner's session is untouched: same process, still answering.
    expect(status()).toEqual(expect.objectContaining({ sessions: 2, processes: 2 }));
    expect(text(await owner.client.callTool({ name: 'echo', arguments: { message: 'still mine' } }))).toContain('still mine');
    expect(app.logs.join('')).toContain('refused a session id presented by a token of another approval than the one that started it');

    // The same client approved again (with the PIN no person is recorded, and a metadata-document
    // client is one client for all its users): a token of that other grant is refused too.
    const ownerRecord = await app.services.store.getAccessToken(hashSecret(accessToken(owner)), clock.now());
    if (!ownerRecord) throw new Error('the owner\'s token is not in the store');
    const sibling = 'sibling-approval-token';
    const { access, refresh } = tokenPair(ownerRecord.clientId, 'another-grant', hashSecret(sibling), hashSecret('sibling-refresh'), clock.now());
    await app.services.store.putTokens({ ...access, scopes: ownerRecord.scopes, resource: ownerRecord.resource }, { ...refresh, scopes: ownerRecord.scopes, resource: ownerRecord.resource });
    const siblingCall = await mcpPost(url('/everything/mcp'), sibling, { jsonrpc: '2.0', id: 8, method: 'tools/list' }, { ...headers, authorization: `Bearer ${sibling}` });
    expect(siblingCall.status).toBe(404);
  });

  it('DELETE ends the session and its process', async () => {
    const before = serverPids();
    const session = second?.transport.sessionId;
    expect(session).toBeDefined();
    await second?.transport.terminateSession();
    await waitFor(() => serverPids().length === 1, 'the deleted session’s process to end');
    const gone = before.filter((pid) => !serverPids().includes(pid));
    expect(gone).toHaveLength(1);
    expect(isAlive(gone[0] ?? 0)).toBe(false);
    const reuse = await mcpPost(url('/everything/mcp'), accessToken(first), { jsonrpc: '2.0', id: 9, method: 'tools/list' }, { 'mcp-session-id': session ?? '' });
    expect(reuse.status).toBe(404);
    await second?.client.close();
    second = undefined;
  });

  it('a child that dies mid-call fails the call with a JSON-RPC error; the next initialize starts afresh', async () => {
    const [pid] = serverPids();
    const call = first.client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 60, steps: 60 } }, undefined, {
      onprogress: () => {
        if (pid !== undefined && isAlive(pid)) process.kill(pid, 'SIGKILL');
      },
      timeout: 120_000,
    });
    await expect(call).rejects.toBeInstanceOf(McpError);
    await expect(call).rejects.toThrow(/"everything" was killed by SIGKILL before answering/);
    await waitFor(() => status()?.processes === 0, 'the dead session to be cleared');
    expect(status()?.lastError?.message).toBe('process was killed by SIGKILL');

    await first.client.close();
    first = await connectMcp(url('/everything/mcp'), PIN, { provider: first.provider });
    expect(text(await first.client.callTool({ name: 'echo', arguments: { message: 'again' } }))).toContain('again');
    expect(serverPids()).toHaveLength(1);
    expect(serverPids()[0]).not.toBe(pid);
  });

  it('ends a session idle for OAUTH_GATEWAY_IDLE_TIMEOUT (by the clock)', async () => {
    const [pid] = serverPids();
    clock.advance(999);
    expect(status()?.processes).toBe(1);
    clock.advance(1);
    await waitUntilGone([pid ?? 0]);
    await waitFor(() => status()?.processes === 0, 'the idle session to be cleared');
    await expect(first.client.callTool({ name: 'echo', arguments: { message: 'late' } })).rejects.toThrow();
    await first.client.close();
    first = await connectMcp(url('/everything/mcp'), PIN, { provider: first.provider });
  });

  it('a server that exits at once answers initialize with a JSON-RPC error', async () => {
    const failed = await connectMcp(url('/broken/mcp'), PIN).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(String(failed)).toContain('"broken" exited with code 3 before answering');
    expect(app.gateway.status().find((s) => s.name === 'broken')?.lastError?.message).toBe('process exited with code 3');
    // A token for "everything" does not open "broken".
    expect((await mcpPost(url('/broken/mcp'), accessToken(first), INITIALIZE)).status).toBe(401);
  });

  it('reload keeps the sessions of unchanged servers and applies the rest; a bad file changes nothing', async () => {
    const [pid] = serverPids();
    app.writeConfig({ mcpServers: { everything, broken: { ...broken, args: ['-e', 'process.exit(4)'] }, extra: { url: 'http://127.0.0.1:9/mcp' } } });
    expect(await app.gateway.reload()).toEqual({ added: ['extra'], removed: [], changed: ['broken'], unchanged: ['everything'] });
    expect(app.gateway.resources()).toEqual([url('/everything/mcp'), url('/broken/mcp'), url('/extra/mcp')]);
    expect(text(await first.client.callTool({ name: 'echo', arguments: { message: 'still here' } }))).toContain('still here');
    expect(serverPids()).toEqual([pid]);

    app.writeConfig({ mcpServers: { everything: { ...everything, path: '/token' } } });
    await expect(app.gateway.reload()).rejects.toBeInstanceOf(GatewayConfigError);
    expect(app.gateway.status().map((s) => s.name)).toEqual(['everything', 'broken', 'extra']);
    expect(serverPids()).toEqual([pid]);
  });
});

/**
 * The gateway in front of an HTTP MCP server that has no authentication of its own: the MCP
 * SDK client goes through the whole OAuth flow with Latchkey and then talks to the upstream
 * through the gateway, which checks the token, strips it, and says who calls.
 */
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { hashSecret } from '../../src/crypto/secrets.js';
import type { Approver } from '../../src/store/types.js';
import { freePort } from '../helpers/running-app.js';
import { clientRecord, tokenPair } from '../helpers/records.js';
import { waitFor } from './helpers/proc.js';
import { startGatewayApp, PIN, type GatewayApp } from './helpers/gateway-app.js';
import { accessToken, connectMcp, mcpPost, obtainToken, INITIALIZE, type Connection } from './helpers/oauth-client.js';
import { startUpstream, type UpstreamServer } from './helpers/upstream-server.js';

const UPSTREAM_KEY = 'upstream-api-key-not-for-logs';
const INTROSPECTION_SECRET = 'gateway-test-introspection-secret';

let upstream: UpstreamServer;
let jsonUpstream: UpstreamServer;
let app: GatewayApp;
let notes: Connection;
const exchanges: string[] = [];

const recording: FetchLike = async (input, init) => {
  const response = await fetch(input, init);
  exchanges.push(`${init?.method ?? 'GET'} ${String(input).replace(app.baseUrl, '')} ${response.status}`);
  return response;
};

const url = (path: string): string => `${app.baseUrl}${path}`;
const text = (result: unknown): string => (result as { content: { text: string }[] }).content[0]?.text ?? '';

beforeAll(async () => {
  upstream = await startUpstream();
  jsonUpstream = await startUpstream({ jsonResponse: true });
  app = await startGatewayApp(
    {
      mcpServers: {
        notes: { url: upstream.url, headers: { 'X-Api-Key': UPSTREAM_KEY }, tools: { deny: ['secret*'] }, autoApprove: [], type: 'http' },
        ledger: { url: jsonUpstream.url, tools: { allow: ['who*'] }, path: '/tools/ledger' },
        vault: { url: upstream.url, scopes: ['vault'] },
      },
    },
    { env: { OAUTH_VALID_SCOPES: 'mcp vault', OAUTH_DEFAULT_SCOPES: 'mcp', OAUTH_INTROSPECTION_SECRET: INTROSPECTION_SECRET } },
  );
  notes = await connectMcp(url('/notes/mcp'), PIN, { fetch: recording });
});

afterAll(async () => {
  await notes?.client.close();
  await app?.stop();
  await upstream?.stop();
  await jsonUpstream?.stop();
});

describe('gateway to an HTTP MCP server', () => {
  it('went through 401, protected resource metadata, AS metadata, registration, consent and token', () => {
    const order = [
      'POST /notes/mcp 401',
      'GET /.well-known/oauth-protected-resource/notes/mcp 200',
      'GET /.well-known/oauth-authorization-server 200',
      'POST /register 201',
      'POST /token 200',
      'POST /notes/mcp 200',
    ];
    let at = -1;
    for (const step of order) {
      const found = exchanges.indexOf(step, at + 1);
      expect({ step, found: found > at }).toEqual({ step, found: true });
      at = found;
    }
    expect(notes.provider.authorizationUrls[0]?.searchParams.get('resource')).toBe(url('/notes/mcp'));
  });

  it('publishes RFC 9728 metadata naming Latchkey, and answers browser preflights', async () => {
    const res = await fetch(url('/.well-known/oauth-protected-resource/notes/mcp'));
    expect(await res.json()).toEqual(
      expect.objectContaining({ resource: url('/notes/mcp'), authorization_servers: [app.baseUrl], scopes_supported: ['mcp'] }),
    );
    const custom = await fetch(url('/.well-known/oauth-protected-resource/tools/ledger'));
    expect(((await custom.json()) as { resource: string }).resource).toBe(url('/tools/ledger'));

    const preflight = await fetch(url('/notes/mcp'), {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:6274', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, mcp-session-id' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('DELETE');
    for (const header of ['authorization', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']) {
      expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain(header);
    }
    const unauthenticated = await mcpPost(url('/notes/mcp'), undefined, INITIALIZE, { origin: 'http://localhost:6274' });
    expect(unauthenticated.headers.get('access-control-expose-headers')).toMatch(/Mcp-Session-Id.*WWW-Authenticate/);
  });

  it('answers 401 with resource_metadata, and invalid_token when a bad token was sent', async () => {
    const none = await mcpPost(url('/notes/mcp'), undefined, INITIALIZE);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${url('/.well-known/oauth-protected-resource/notes/mcp')}"`);
    const bad = await mcpPost(url('/notes/mcp'), 'not-a-real-token', INITIALIZE);
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(bad.headers.get('www-authenticate')).toContain('resource_metadata=');
  });

  it('answers a malformed Bearer token with invalid_token, and another scheme with the bare challenge (RFC 6750 §3.1)', async () => {
    const metadata = `resource_metadata="${url('/.well-known/oauth-protected-resource/notes/mcp')}"`;
    const before = upstream.seen.length;
    const post = (authorization: string): Promise<Response> =>
      fetch(url('/notes/mcp'), {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(INITIALIZE),
      });
    for (const malformed of ['Bearer', 'Bearer ', `Bearer ${accessToken(notes)} extra`, 'Bearer tok"en', 'Bearer tök', 'bearer a=b']) {
      const res = await post(malformed);
      expect({ malformed, status: res.status }).toEqual({ malformed, status: 401 });
      expect(res.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", error_description="The access token is malformed", ${metadata}`);
    }
    // "attempted using an unsupported authentication method": no error code, only where to find Latchkey.
    const basic = await post(`Basic ${Buffer.from('user:pass').toString('base64')}`);
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe(`Bearer ${metadata}`);
    expect(upstream.seen.length).toBe(before);
  });

  it('the upstream sees who calls, its configured key, and never the token or cookies', async () => {
    const headers = JSON.parse(text(await notes.client.callTool({ name: 'whoami' }))) as Record<string, string>;
    expect(headers['x-latchkey-client-id']).toBe(notes.provider.client?.client_id);
    expect(headers['x-latchkey-client-name']).toBe('latchkey e2e host');
    expect(headers['x-latchkey-scope']).toBe('mcp');
    expect(headers['x-api-key']).toBe(UPSTREAM_KEY);
    expect(headers.authorization).toBeUndefined();

    // A client trying to pass itself off as another, with a cookie on top.
    const token = accessToken(notes);
    const spoofed = await mcpPost(url('/notes/mcp'), token, INITIALIZE, {
      'x-latchkey-client-id': 'someone-else',
      'x-latchkey-scope': 'admin',
      'x-latchkey-subject': 'root',
      'x-latchkey-username': 'root',
      cookie: 'latchkey_admin=stolen',
    });
    expect(spoofed.status).toBe(200);
    const last = upstream.seen[upstream.seen.length - 1] ?? {};
    expect(last['x-latchkey-client-id']).toBe(notes.provider.client?.client_id);
    expect(last['x-latchkey-scope']).toBe('mcp');
    expect(last['x-latchkey-subject']).toBeUndefined();
    expect(last['x-latchkey-username']).toBeUndefined();
    expect(last.cookie).toBeUndefined();
    expect(upstream.seen.length).toBeGreaterThan(3);
    for (const seen of upstream.seen) {
      expect(seen.authorization).toBeUndefined();
      expect(JSON.stringify(seen)).not.toContain(token);
    }
    expect(app.logs.join('')).not.toContain(token);
    expect(app.logs.join('')).not.toContain(UPSTREAM_KEY);
  });

  it('tells the upstream who approved the grant: subject, e-mail, and the username /introspect answers', async () => {
    const { store } = app.services;
    const clientId = 'signed-in-host';
    await store.putClient(clientRecord(clientId, 'Signed-in host'));
    const people: { token: string; approvedBy: Approver }[] = [
      { token: 'tok-alice-signed-in', approvedBy: { subject: 'oidc:accounts.example.com:1098', email: 'alice@example.com', name: 'Alice Example', provider: 'oidc', emailVerified: true } },
      { token: 'tok-zoe-signed-in', approvedBy: { subject: 'github:4242', name: 'Zoë Example', provider: 'github', githubLogin: 'zoe' } },
    ];
    for (const [i, { token, approvedBy }] of people.entries()) {
      const { access, refresh } = tokenPair(clientId, `grant-signed-in-${i}`, hashSecret(token), hashSecret(`${token}-refresh`));
      await store.putTokens({ ...access, resource: url('/notes/mcp'), approvedBy }, { ...refresh, resource: url('/notes/mcp'), approvedBy });
      const introspected = (await (
        await fetch(url('/introspect'), {
          method: 'POST',
          headers: { authorization: `Bearer ${INTROSPECTION_SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }).toString(),
        })
      ).json()) as { active: boolean; username?: string };
      expect(introspected).toEqual(expect.objectContaining({ active: true, username: expect.any(String) }));

      // The client's own X-Latchkey-* never reach the upstream; the gateway's do.
      const res = await mcpPost(url('/notes/mcp'), token, INITIALIZE, { 'x-latchkey-username': 'root', 'x-latchkey-email': 'root@example.com' });
      expect(res.status).toBe(200);
      await res.body?.cancel();
      const seen = upstream.seen.filter((h) => h['x-latchkey-client-id'] === clientId).at(-1) ?? {};
      expect(seen['x-latchkey-subject']).toBe(approvedBy.subject);
      expect(seen['x-latchkey-email']).toBe(approvedBy.email);
      expect(decodeURIComponent(String(seen['x-latchkey-username']))).toBe(introspected.username);
      expect(seen.authorization).toBeUndefined();
    }
    // A name in any script (Zoë's, who has no e-mail) arrives percent-encoded, as visible ASCII.
    for (const h of upstream.seen.filter((seen) => seen['x-latchkey-client-id'] === clientId)) expect(h['x-latchkey-username']).toMatch(/^[\x20-\x7e]+$/);
  });

  it('passes progress on while the tool still runs: the tool finishes only after the client saw it', async () => {
    const progress: number[] = [];
    const result = await notes.client.callTool({ name: 'gated' }, undefined, {
      onprogress: (p) => {
        progress.push(p.progress);
        // Were the stream buffered, this would never run before the result, and the tool would never finish.
        if (p.progress === 1) upstream.release();
      },
    });
    expect(text(result)).toBe('released');
    expect(progress).toEqual([1, 2]);
  });

  it('a client that disconnects in the middle of a call aborts the request to the upstream', async () => {
    const controller = new AbortController();
    const res = await fetch(url('/notes/mcp'), {
      method: 'POST',
      signal: controller.signal,
      headers: {
        authorization: `Bearer ${accessToken(notes)}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': notes.transport.sessionId ?? '',
        'mcp-protocol-version': '2025-06-18',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'abandoned', method: 'tools/call', params: { name: 'gated', _meta: { progressToken: 'p-abandoned' } } }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    // The tool runs: its first progress came through; it waits to be released, which never happens.
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let received = '';
    while (!received.includes('p-abandoned')) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended early: ${received}`);
      received += new TextDecoder().decode(value);
    }
    expect(upstream.cutOff).not.toContain('tools/call gated');
    controller.abort();
    await waitFor(() => upstream.cutOff.includes('tools/call gated'), 'the upstream to see the call’s connection close');
    upstream.release(); // lets the abandoned tool finish; its answer has nowhere to go
  });

  it('a GET opens the upstream event stream, with MCP-Protocol-Version and Last-Event-ID passed on; DELETE ends the upstream session', async () => {
    const token = accessToken(notes);
    const init = await mcpPost(url('/notes/mcp'), token, INITIALIZE);
    const session = init.headers.get('mcp-session-id') ?? '';
    await init.body?.cancel();
    expect(session).not.toBe('');
    const sessionHeaders = { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
    expect((await mcpPost(url('/notes/mcp'), token, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionHeaders)).status).toBe(202);

    const controller = new AbortController();
    const stream = await fetch(url('/notes/mcp'), {
      signal: controller.signal,
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'last-event-id': 'event-41', ...sessionHeaders },
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('mcp-session-id')).toBe(session);
    const get = upstream.seen[upstream.methods.lastIndexOf('GET')];
    expect(get).toEqual(expect.objectContaining({ 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18', 'last-event-id': 'event-41', accept: 'text/event-stream' }));
    controller.abort();

    const deleted = await fetch(url('/notes/mcp'), { method: 'DELETE', headers: { authorization: `Bearer ${token}`, ...sessionHeaders } });
    expect(deleted.status).toBe(200);
    expect(upstream.seen[upstream.methods.lastIndexOf('DELETE')]?.['mcp-session-id']).toBe(session);
    // The upstream ended its session: the id is unknown there now.
    const after = await mcpPost(url('/notes/mcp'), token, { jsonrpc: '2.0', id: 5, method: 'tools/list' }, sessionHeaders);
    expect(after.status).toBe(404);
    expect(((await after.json()) as { error: { code: number } }).error.code).toBe(-32001);
  });

  it('hides a denied tool and refuses to call it without reaching the upstream (SSE responses)', async () => {
    const tools = (await notes.client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['whoami', 'gated', 'die']));
    expect(tools).not.toContain('secret-tool');
    const before = upstream.calls.length;
    const refused = notes.client.callTool({ name: 'secret-tool' });
    await expect(refused).rejects.toBeInstanceOf(McpError);
    await expect(refused).rejects.toMatchObject({ code: -32602 });
    expect(upstream.calls.slice(before)).not.toContain('tools/call secret-tool');
  });

  it('applies an allow list to JSON responses too', async () => {
    const ledger = await connectMcp(url('/tools/ledger'), PIN);
    try {
      expect((await ledger.client.listTools()).tools.map((t) => t.name)).toEqual(['whoami']);
      await expect(ledger.client.callTool({ name: 'gated' })).rejects.toMatchObject({ code: -32602 });
      expect(jsonUpstream.calls).not.toContain('tools/call gated');
      expect(JSON.parse(text(await ledger.client.callTool({ name: 'whoami' })))['x-latchkey-client-id']).toBe(ledger.provider.client?.client_id);
    } finally {
      await ledger.client.close();
    }
  });

  it('refuses a token issued for another gateway server', async () => {
    const res = await mcpPost(url('/tools/ledger'), accessToken(notes), INITIALIZE);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await res.json()).toEqual(expect.objectContaining({ error_description: 'The access token was issued for another resource' }));
  });

  it('answers 403 insufficient_scope to a token without the server scopes', async () => {
    const token = await obtainToken(app.baseUrl, PIN, url('/vault/mcp'), 'mcp');
    const res = await mcpPost(url('/vault/mcp'), token, INITIALIZE);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer error="insufficient_scope", scope="vault", resource_metadata="${url('/.well-known/oauth-protected-resource/vault/mcp')}"`,
    );
    const scoped = await obtainToken(app.baseUrl, PIN, url('/vault/mcp'), 'vault');
    expect((await mcpPost(url('/vault/mcp'), scoped, INITIALIZE)).status).toBe(200);
  });

  it('an upstream dying in the middle of a stream gives the caller a JSON-RPC error', async () => {
    // The stream is open and has carried an event when the upstream goes away.
    const died = notes.client.callTool({ name: 'die' }, undefined, { onprogress: () => upstream.release() });
    await expect(died).rejects.toBeInstanceOf(McpError);
    await expect(died).rejects.toThrow(/"notes" closed the connection before answering/);
    expect(app.gateway.status().find((s) => s.name === 'notes')?.lastError?.message).toContain('closed an event stream');
  });

  it('refuses a body that is not JSON, not valid JSON or over 4 MiB, without reaching the upstream', async () => {
    const token = accessToken(notes);
    const before = upstream.seen.length;
    const post = (body: string, type = 'application/json'): Promise<Response> =>
      fetch(url('/notes/mcp'), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': type, accept: 'application/json, text/event-stream' }, body });
    const form = await post('a=1', 'application/x-www-form-urlencoded');
    expect(form.status).toBe(415);
    expect(((await form.json()) as { error: { code: number } }).error.code).toBe(-32000);
    const broken = await post('{"jsonrpc":"2.0",');
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { code: number } }).error.code).toBe(-32700);
    // Sent in pieces without a length, so only counting the bytes as they come can refuse it.
    const chunks = (function* () {
      for (let i = 0; i < 5; i++) yield new TextEncoder().encode(`${i === 0 ? '[' : ','}"${'x'.repeat(1024 * 1024)}"`);
    })();
    const huge = await fetch(url('/notes/mcp'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: ReadableStream.from(chunks),
      duplex: 'half',
    } as RequestInit);
    expect(huge.status).toBe(413);
    expect(upstream.seen.length).toBe(before);
    // The gateway still serves the session afterwards.
    expect(text(await notes.client.callTool({ name: 'whoami' }))).toContain('x-latchkey-client-id');
  });

  it('a revoked grant stops working at once (checked in process, no cache)', async () => {
    const token = accessToken(notes);
    expect((await mcpPost(url('/notes/mcp'), token, INITIALIZE)).status).toBe(200);
    const revoked = await fetch(url('/revoke'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: notes.provider.storedTokens?.refresh_token ?? '', client_id: notes.provider.client?.client_id ?? '' }).toString(),
    });
    expect(revoked.status).toBe(200);
    const after = await mcpPost(url('/notes/mcp'), token, INITIALIZE);
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });
});

describe('gateway to HTTP upstreams that fail', () => {
  let failing: GatewayApp;
  let hanging: import('node:net').Server;
  let keyed: UpstreamServer;
  const sockets = new Set<import('node:net').Socket>();

  beforeAll(async () => {
    keyed = await startUpstream({ apiKey: 'the-right-key' });
    const { createServer } = await import('node:net');
    hanging = createServer((socket) => {
      sockets.add(socket); // accepts, reads, never answers
      socket.on('close', () => sockets.delete(socket));
    });
    const hangPort = await freePort();
    await new Promise<void>((resolve) => hanging.listen(hangPort, '127.0.0.1', () => resolve()));
    const downPort = await freePort();
    failing = await startGatewayApp(
      {
        mcpServers: {
          down: { url: `http://127.0.0.1:${downPort}/mcp` },
          hang: { url: `http://127.0.0.1:${hangPort}/mcp` },
          keyed: { url: keyed.url, headers: { 'X-Api-Key': 'the-right-key' } },
          locked: { url: keyed.url },
          wrongkey: { url: keyed.url, headers: { 'X-Api-Key': 'a-wrong-key' } },
        },
      },
      { env: { OAUTH_GATEWAY_UPSTREAM_TIMEOUT: '1' } },
    );
  });

  afterAll(async () => {
    await failing?.stop();
    await keyed?.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
  });

  it('upstream down: 502 with a JSON-RPC error for the request', async () => {
    const token = await obtainToken(failing.baseUrl, PIN, `${failing.baseUrl}/down/mcp`, 'mcp');
    const res = await mcpPost(`${failing.baseUrl}/down/mcp`, token, INITIALIZE);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 0, error: { code: -32000, message: 'The MCP server "down" is unreachable (ECONNREFUSED)' } });
  });

  it('upstream silent: 504 with a JSON-RPC error, not a hang', async () => {
    const token = await obtainToken(failing.baseUrl, PIN, `${failing.baseUrl}/hang/mcp`, 'mcp');
    const res = await mcpPost(`${failing.baseUrl}/hang/mcp`, token, INITIALIZE);
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual({ jsonrpc: '2.0', id: 0, error: { code: -32000, message: 'The MCP server "hang" did not answer in time' } });
    expect(failing.gateway.status().find((s) => s.name === 'hang')?.lastError?.message).toBe('no answer within 1 s');
  });

  it('an upstream refusing the gateway (401, 403) gives 502 with a message, never the upstream\'s challenge', async () => {
    const withKey = await obtainToken(failing.baseUrl, PIN, `${failing.baseUrl}/keyed/mcp`, 'mcp');
    const served = await mcpPost(`${failing.baseUrl}/keyed/mcp`, withKey, INITIALIZE);
    expect(served.status).toBe(200);
    await served.body?.cancel();
    for (const [name, status] of [['locked', 401], ['wrongkey', 403]] as const) {
      const token = await obtainToken(failing.baseUrl, PIN, `${failing.baseUrl}/${name}/mcp`, 'mcp');
      const before = keyed.seen.length;
      const res = await mcpPost(`${failing.baseUrl}/${name}/mcp`, token, INITIALIZE);
      expect(keyed.seen.length).toBe(before + 1);
      expect(res.status).toBe(502);
      expect(res.headers.get('www-authenticate')).toBeNull();
      expect(await res.json()).toEqual({
        jsonrpc: '2.0',
        id: 0,
        error: { code: -32000, message: `The MCP server "${name}" refused the gateway's request (HTTP ${status}); its owner should check the headers configured for it` },
      });
      expect(failing.gateway.status().find((s) => s.name === name)?.lastError?.message).toBe(`answered HTTP ${status} to the gateway`);
    }
  });
});

/**
 * The official MCP SDK client against Latchkey and the demo MCP server, both real child
 * processes on loopback. This is the code path ChatGPT, Claude and the Inspector run:
 * 401 → RFC 9728 metadata → RFC 8414 metadata → DCR → consent → token → tools/call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { HeadlessOAuthProvider } from './helpers/headless-oauth-provider.js';
import { DEMO_SERVER_ENTRY, freePort, LATCHKEY_ENTRY, ManagedProcess } from './helpers/processes.js';

const PIN = '24681357';
const SECRET = 'e2e-introspection-secret-0123456789';
const REDIRECT = 'http://127.0.0.1:6276/oauth/callback';

let dataDir: string;
let issuer: string;
let mcpUrl: string;
let otherResource: string;
let latchkey: ManagedProcess;
let demo: ManagedProcess;

/** Every HTTP exchange the SDK makes, so tests can say which steps happened. */
interface Exchange {
  method: string;
  url: string;
  status: number;
  grantType?: string;
  error?: string;
}
const exchanges: Exchange[] = [];

const recordingFetch: FetchLike = async (input, init) => {
  const response = await fetch(input, init);
  const body = init?.body;
  const form = body instanceof URLSearchParams ? body : typeof body === 'string' && !body.startsWith('{') ? new URLSearchParams(body) : undefined;
  let error: string | undefined;
  if (!response.ok && (response.headers.get('content-type') ?? '').includes('json')) {
    error = ((await response.clone().json()) as { error?: string }).error;
  }
  exchanges.push({
    method: init?.method ?? 'GET',
    url: String(input),
    status: response.status,
    ...(form?.get('grant_type') ? { grantType: form.get('grant_type') ?? '' } : {}),
    ...(error ? { error } : {}),
  });
  return response;
};

const since = (mark: number): Exchange[] => exchanges.slice(mark);
const tokenCalls = (list: Exchange[]): Exchange[] => list.filter((e) => e.url === `${issuer}/token`);
const mcpCalls = (list: Exchange[]): Exchange[] => list.filter((e) => e.url === mcpUrl);

const provider = () => new HeadlessOAuthProvider(PIN, REDIRECT);
let host: HeadlessOAuthProvider;
let session: { client: Client; transport: StreamableHTTPClientTransport };

function openSession(p: HeadlessOAuthProvider): { client: Client; transport: StreamableHTTPClientTransport } {
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: p, fetch: recordingFetch });
  return { client: new Client({ name: 'latchkey-e2e', version: '1.0.0' }), transport };
}

/** Connects as a host does: the first attempt ends in an authorization, then finishAuth and connect again. */
async function connect(p: HeadlessOAuthProvider): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const first = openSession(p);
  try {
    await first.client.connect(first.transport);
    return first;
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    await first.transport.finishAuth(p.takeCode());
  }
  const second = openSession(p);
  await second.client.connect(second.transport);
  return second;
}

async function whoami(client: Client): Promise<{ client_id: string; scopes: string[]; resource: string }> {
  const result = await client.callTool({ name: 'whoami' });
  const content = result.content as { type: string; text: string }[];
  return JSON.parse(content[0]?.text ?? '{}') as { client_id: string; scopes: string[]; resource: string };
}

async function introspect(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${issuer}/introspect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return (await res.json()) as Record<string, unknown>;
}

/** Waits for Latchkey to consider the token expired: a condition, not a duration. */
async function waitUntilInactive(token: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if ((await introspect(token)).active === false) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the access token never expired');
}

function accessToken(p: HeadlessOAuthProvider): string {
  const token = p.storedTokens?.access_token;
  if (!token) throw new Error('the host holds no access token');
  return token;
}

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-e2e-'));
  const [latchkeyPort, demoPort, otherPort] = await Promise.all([freePort(), freePort(), freePort()]);
  issuer = `http://127.0.0.1:${latchkeyPort}`;
  mcpUrl = `http://127.0.0.1:${demoPort}/mcp`;
  otherResource = `http://127.0.0.1:${otherPort}/mcp`;
  latchkey = new ManagedProcess(
    LATCHKEY_ENTRY,
    {
      PORT: String(latchkeyPort),
      HOST: '127.0.0.1',
      OAUTH_ISSUER_URL: issuer,
      OAUTH_PIN: PIN,
      OAUTH_DATA_DIR: dataDir,
      OAUTH_RESOURCES: `${mcpUrl},${otherResource}`,
      OAUTH_INTROSPECTION_SECRET: SECRET,
      LOG_LEVEL: 'warn',
    },
    `${issuer}/healthz`,
  );
  demo = new ManagedProcess(
    DEMO_SERVER_ENTRY,
    {
      DEMO_PORT: String(demoPort),
      DEMO_MCP_URL: mcpUrl,
      LATCHKEY_ISSUER_URL: issuer,
      OAUTH_INTROSPECTION_SECRET: SECRET,
      // Every request asks Latchkey, so restarts and revocations show at once.
      DEMO_INTROSPECTION_CACHE_SECONDS: '0',
    },
    `http://127.0.0.1:${demoPort}/.well-known/oauth-protected-resource/mcp`,
  );
  await latchkey.start();
  await demo.start();
  host = provider();
});

afterAll(async () => {
  await session?.client.close();
  await demo?.stop();
  await latchkey?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('the MCP SDK client against Latchkey and the demo server', () => {
  it('answers an unauthenticated call with 401 and resource_metadata', async () => {
    const res = await fetch(mcpUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain(
      `resource_metadata="${new URL(mcpUrl).origin}/.well-known/oauth-protected-resource/mcp"`,
    );
  });

  it('first connection: metadata, registration, consent, token with resource, tools/call', async () => {
    const mark = exchanges.length;
    session = await connect(host);
    const me = await whoami(session.client);
    expect(me).toEqual(expect.objectContaining({ client_id: host.client?.client_id, scopes: ['mcp'], resource: mcpUrl }));

    const steps = since(mark).map((e) => `${e.method} ${e.url.replace(issuer, 'AS').replace(new URL(mcpUrl).origin, 'RS')} ${e.status}`);
    const order = [
      'POST RS/mcp 401',
      'GET RS/.well-known/oauth-protected-resource/mcp 200',
      'GET AS/.well-known/oauth-authorization-server 200',
      'POST AS/register 201',
      'POST AS/token 200',
      'POST RS/mcp 200',
    ];
    let at = -1;
    for (const step of order) {
      const found = steps.indexOf(step, at + 1);
      expect({ step, found: found > at }).toEqual({ step, found: true });
      at = found;
    }
    expect(tokenCalls(since(mark))[0]?.grantType).toBe('authorization_code');
    const authorizeUrl = host.authorizationUrls[0];
    expect(authorizeUrl?.searchParams.get('resource')).toBe(mcpUrl);
    expect(authorizeUrl?.searchParams.get('code_challenge_method')).toBe('S256');
    expect(host.registrations).toHaveLength(1);
  });

  it('Latchkey restarted: the same client and token still work', async () => {
    const token = accessToken(host);
    const mark = exchanges.length;
    await latchkey.restart();
    expect((await whoami(session.client)).client_id).toBe(host.client?.client_id);
    expect(accessToken(host)).toBe(token);
    expect(tokenCalls(since(mark))).toHaveLength(0);
    expect(host.registrations).toHaveLength(1);
  });

  it('access token expired: the SDK refreshes by itself and the call succeeds', async () => {
    await latchkey.restart({ OAUTH_ACCESS_TOKEN_TTL: '3' });
    // A refresh now hands the host a token that expires in 3 s.
    expect(await auth(host, { serverUrl: mcpUrl, fetchFn: recordingFetch })).toBe('AUTHORIZED');
    const shortLived = accessToken(host);
    await waitUntilInactive(shortLived);

    const mark = exchanges.length;
    expect((await whoami(session.client)).client_id).toBe(host.client?.client_id);
    expect(mcpCalls(since(mark)).map((e) => e.status)).toEqual([401, 200]);
    expect(tokenCalls(since(mark)).map((e) => `${e.grantType} ${e.status}`)).toEqual(['refresh_token 200']);
    expect(accessToken(host)).not.toBe(shortLived);
    expect(host.registrations).toHaveLength(1);
  });

  it('access token expired across a Latchkey restart: the refresh still works', async () => {
    const shortLived = accessToken(host);
    await latchkey.restart({ OAUTH_ACCESS_TOKEN_TTL: '3600' });
    await waitUntilInactive(shortLived);

    const mark = exchanges.length;
    expect((await whoami(session.client)).client_id).toBe(host.client?.client_id);
    expect(tokenCalls(since(mark)).map((e) => `${e.grantType} ${e.status}`)).toEqual(['refresh_token 200']);
    expect(accessToken(host)).not.toBe(shortLived);
    expect(host.registrations).toHaveLength(1);
  });

  it('a token issued for another resource is refused by the demo server', async () => {
    const other = new HeadlessOAuthProvider(PIN, REDIRECT, {}, otherResource);
    expect(await auth(other, { serverUrl: mcpUrl, fetchFn: recordingFetch })).toBe('REDIRECT');
    expect(await auth(other, { serverUrl: mcpUrl, authorizationCode: other.takeCode(), fetchFn: recordingFetch })).toBe('AUTHORIZED');
    const token = accessToken(other);
    expect(await introspect(token)).toEqual(expect.objectContaining({ active: true, aud: otherResource }));

    const res = await fetch(mcpUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(await res.json()).toEqual(expect.objectContaining({ error_description: 'The access token was issued for another resource' }));
  });

  it('revoking the grant makes the next call 401, and a new authorization succeeds', async () => {
    const clientId = host.client?.client_id ?? '';
    const revoked = await fetch(`${issuer}/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: host.storedTokens?.refresh_token ?? '', token_type_hint: 'refresh_token', client_id: clientId }).toString(),
    });
    expect(revoked.status).toBe(200);

    const mark = exchanges.length;
    await expect(whoami(session.client)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(mcpCalls(since(mark))[0]?.status).toBe(401);
    expect(tokenCalls(since(mark)).map((e) => `${e.grantType} ${e.error}`)).toEqual(['refresh_token invalid_grant']);
    expect(host.invalidations).toContain('tokens');

    await session.transport.finishAuth(host.takeCode());
    expect((await whoami(session.client)).client_id).toBe(clientId);
    expect(host.registrations).toHaveLength(1);
  });

  it('the host holds a client_id Latchkey does not know: invalid_client, re-registration, recovery', async () => {
    // The owner lost the data directory: every client and token is gone.
    await latchkey.stop();
    rmSync(dataDir, { recursive: true, force: true });
    await latchkey.start();
    const oldClientId = host.client?.client_id;

    const mark = exchanges.length;
    await expect(whoami(session.client)).rejects.toBeInstanceOf(UnauthorizedError);
    const tokens = tokenCalls(since(mark));
    expect(tokens[0]).toEqual(expect.objectContaining({ grantType: 'refresh_token', status: 401, error: 'invalid_client' }));
    expect(host.invalidations).toContain('all');
    expect(since(mark).some((e) => e.url === `${issuer}/register` && e.status === 201)).toBe(true);

    await session.transport.finishAuth(host.takeCode());
    const me = await whoami(session.client);
    expect(me.client_id).toBe(host.client?.client_id);
    expect(me.client_id).not.toBe(oldClientId);
    expect(host.registrations).toHaveLength(2);
  });
});

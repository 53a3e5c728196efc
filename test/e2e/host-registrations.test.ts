/**
 * Registration + authorization + token exchange with the bodies and redirect URIs real MCP
 * hosts use (see INTEROP.md), against a Latchkey listening on loopback. The consent step is
 * the headless one the SDK test uses; the redirect target is never contacted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createServices, type Services } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';
import { approveHeadlessly } from './helpers/headless-consent.js';
import { freePort } from './helpers/processes.js';

const PIN = '13572468';
const SECRET = 'hosts-introspection-secret-0123456789';
const MCP_URL = 'https://mcp.example.com/mcp';

let dataDir: string;
let issuer: string;
let services: Services;
let server: Server;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'latchkey-hosts-'));
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    PORT: String(port),
    OAUTH_ISSUER_URL: issuer,
    OAUTH_PIN: PIN,
    OAUTH_DATA_DIR: dataDir,
    OAUTH_RESOURCES: MCP_URL,
    OAUTH_VALID_SCOPES: 'mcp',
    OAUTH_INTROSPECTION_SECRET: SECRET,
  });
  services = await createServices(config, createLogger('silent'));
  server = await new Promise<Server>((resolve) => {
    const s = services.app.listen(port, '127.0.0.1', () => resolve(s));
  });
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await services.backend.close();
  rmSync(dataDir, { recursive: true, force: true });
});

function hasNull(value: unknown): boolean {
  if (value === null) return true;
  if (typeof value === 'object') return Object.values(value as object).some(hasNull);
  return false;
}

async function register(body: Record<string, unknown>, origin?: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  expect({ status: res.status, json }).toEqual({ status: 201, json: expect.objectContaining({ client_id: expect.any(String) }) });
  expect(hasNull(json)).toBe(false);
  expect(json.redirect_uris).toEqual(body.redirect_uris);
  expect(json.token_endpoint_auth_method).toBe(body.token_endpoint_auth_method ?? 'client_secret_basic');
  return json;
}

interface Flow {
  client: Record<string, unknown>;
  redirectUri: string;
  scope?: string;
  /** How the client authenticates at /token: as it registered. */
  auth: 'none' | 'client_secret_basic' | 'client_secret_post';
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

async function tokenRequest(flow: Flow, params: Record<string, string>): Promise<Response> {
  const clientId = String(flow.client.client_id);
  const secret = String(flow.client.client_secret ?? '');
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams(params);
  if (flow.auth === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  } else {
    body.set('client_id', clientId);
    if (flow.auth === 'client_secret_post') body.set('client_secret', secret);
  }
  return fetch(`${issuer}/token`, { method: 'POST', headers, body: body.toString() });
}

/** Authorize with PKCE and resource, approve with the PIN, exchange the code, refresh once. */
async function connect(flow: Flow): Promise<{ scope: string; accessToken: string }> {
  const { verifier, challenge } = pkce();
  const state = randomBytes(8).toString('hex');
  const url = new URL(`${issuer}/authorize`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: String(flow.client.client_id),
    redirect_uri: flow.redirectUri,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource: MCP_URL,
    ...(flow.scope !== undefined ? { scope: flow.scope } : {}),
  }).toString();
  const back = await approveHeadlessly(url, PIN);
  expect(back.get('state')).toBe(state);
  expect(back.get('iss')).toBe(issuer);
  const code = back.get('code') ?? '';

  const res = await tokenRequest(flow, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: flow.redirectUri, resource: MCP_URL });
  const tokens = (await res.json()) as Record<string, unknown>;
  expect(res.status).toBe(200);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(tokens).toEqual(
    expect.objectContaining({ access_token: expect.any(String), refresh_token: expect.any(String), token_type: 'Bearer', expires_in: expect.any(Number) }),
  );

  const refreshed = await tokenRequest(flow, { grant_type: 'refresh_token', refresh_token: String(tokens.refresh_token) });
  expect(refreshed.status).toBe(200);
  const accessToken = String(((await refreshed.json()) as Record<string, unknown>).access_token);

  const introspection = await fetch(`${issuer}/introspect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: accessToken }).toString(),
  });
  expect(await introspection.json()).toEqual(
    expect.objectContaining({ active: true, aud: MCP_URL, client_id: flow.client.client_id }),
  );
  return { scope: String(tokens.scope), accessToken };
}

describe('real hosts: registration, authorization and token exchange', () => {
  it('Claude: public client with scope "claudeai", which is dropped for the default scopes', async () => {
    const client = await register({
      client_name: 'claudeai',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      scope: 'claudeai',
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
    });
    expect(client.client_secret).toBeUndefined();
    const { scope } = await connect({ client, redirectUri: 'https://claude.ai/api/mcp/auth_callback', scope: 'claudeai', auth: 'none' });
    expect(scope).toBe('mcp');
  });

  it('Claude: the client_secret_post registration on claude.com', async () => {
    const client = await register({
      client_name: 'claudeai',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'claudeai',
      redirect_uris: ['https://claude.com/api/mcp/auth_callback'],
    });
    expect(client).toEqual(expect.objectContaining({ client_secret: expect.any(String), client_secret_expires_at: 0 }));
    await connect({ client, redirectUri: 'https://claude.com/api/mcp/auth_callback', scope: 'claudeai', auth: 'client_secret_post' });
  });

  it('ChatGPT: no scope at registration, scopes asked at /authorize, both redirect URI forms', async () => {
    const redirects = ['https://chatgpt.com/connector_platform_oauth_redirect', 'https://chatgpt.com/connector/oauth/c_0a1b2c3d'];
    const client = await register({
      client_name: 'ChatGPT',
      redirect_uris: redirects,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    });
    for (const redirectUri of redirects) {
      const { scope } = await connect({ client, redirectUri, scope: 'mcp', auth: 'client_secret_basic' });
      expect(scope).toBe('mcp');
    }
  });

  it('Claude Code: loopback redirect on a random port, registered with and without the port', async () => {
    const port = 40000 + (randomBytes(2).readUInt16BE() % 20000);
    const withPort = `http://localhost:${port}/callback`;
    const exact = await register({
      client_name: 'Claude Code',
      redirect_uris: [withPort],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    await connect({ client: exact, redirectUri: withPort, auth: 'none' });

    // RFC 8252 §7.3: a loopback redirect matches on any port.
    const portless = await register({
      client_name: 'Claude Code',
      redirect_uris: ['http://localhost/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    await connect({ client: portless, redirectUri: `http://localhost:${port + 1}/callback`, auth: 'none' });
  });

  it('MCP Inspector: browser preflights, then both loopback callbacks', async () => {
    for (const endpoint of ['/register', '/token', '/.well-known/oauth-authorization-server']) {
      const preflight = await fetch(`${issuer}${endpoint}`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://localhost:6274',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, mcp-protocol-version',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-headers')).toContain('mcp-protocol-version');
    }
    const redirects = ['http://localhost:6274/oauth/callback', 'http://127.0.0.1:6276/oauth/callback'];
    const client = await register(
      {
        client_name: 'MCP Inspector',
        redirect_uris: redirects,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      'http://localhost:6274',
    );
    for (const redirectUri of redirects) await connect({ client, redirectUri, auth: 'none' });
  });

  it('localhost and 127.0.0.1 are different hosts: the consent page refuses, never redirects', async () => {
    const client = await register({
      redirect_uris: ['http://localhost:6274/oauth/callback'],
      token_endpoint_auth_method: 'none',
    });
    const { challenge } = pkce();
    const url = new URL(`${issuer}/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: String(client.client_id),
      redirect_uri: 'http://127.0.0.1:6274/oauth/callback',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

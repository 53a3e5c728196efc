import { createHash, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { approveHeadlessly } from '../../e2e/helpers/headless-consent.js';
import { HeadlessOAuthProvider } from '../../e2e/helpers/headless-oauth-provider.js';

export const REDIRECT = 'http://127.0.0.1:6276/oauth/callback';

export interface Connection {
  client: Client;
  transport: StreamableHTTPClientTransport;
  provider: HeadlessOAuthProvider;
}

/**
 * What Claude Code or the Inspector do with a connector URL: the MCP SDK client with its OAuth
 * provider. The first attempt ends in an authorization (401 → metadata → registration →
 * consent with the PIN → token), then the client connects again with the token.
 */
export async function connectMcp(url: string, pin: string, options: { provider?: HeadlessOAuthProvider; fetch?: FetchLike } = {}): Promise<Connection> {
  const provider = options.provider ?? new HeadlessOAuthProvider(pin, REDIRECT);
  const open = (): Connection => ({
    client: new Client({ name: 'latchkey-gateway-test', version: '1.0.0' }),
    transport: new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, ...(options.fetch ? { fetch: options.fetch } : {}) }),
    provider,
  });
  const first = open();
  try {
    await first.client.connect(first.transport);
    return first;
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
    await first.transport.finishAuth(provider.takeCode());
  }
  const second = open();
  await second.client.connect(second.transport);
  return second;
}

export function accessToken(connection: Connection): string {
  const token = connection.provider.storedTokens?.access_token;
  if (!token) throw new Error('the client holds no access token');
  return token;
}

/**
 * A token by hand (registration, PKCE, consent, exchange) for `resource` with `scope`: for
 * the cases the SDK would never produce, such as a token lacking a server's scope.
 */
export async function obtainToken(issuer: string, pin: string, resource: string, scope: string): Promise<string> {
  const registered = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'gateway test', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }),
  });
  const { client_id: clientId } = (await registered.json()) as { client_id: string };
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const url = new URL(`${issuer}/authorize`);
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: challenge, code_challenge_method: 'S256', scope, resource, state: 's' })) {
    url.searchParams.set(k, v);
  }
  const back = await approveHeadlessly(url, pin);
  const code = back.get('code');
  if (!code) throw new Error(`no code: ${back.get('error')} ${back.get('error_description')}`);
  const token = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId, code_verifier: verifier, resource }).toString(),
  });
  const body = (await token.json()) as { access_token?: string; error?: string };
  if (!body.access_token) throw new Error(`token refused: ${body.error}`);
  return body.access_token;
}

/** The initialize request a client sends first. */
export const INITIALIZE = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
};

/** A raw Streamable HTTP POST, as a client would send it. */
export function mcpPost(url: string, token: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

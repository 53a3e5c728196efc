import { FakeClock } from '../helpers/fake-clock.js';
import { InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { IntrospectionTokenVerifier, parseIntrospection } from '../../src/resource-server/introspection-verifier.js';

const ISSUER = 'https://auth.example.com';
const RESOURCE = 'https://mcp.example.com/mcp';
const SECRET = 'introspection-secret-0123456789';

interface Call {
  url: string;
  authorization: string | null;
  body: URLSearchParams;
}

/** A fake /introspect that answers from a table and records what it was asked. */
function fakeLatchkey(answers: Record<string, unknown>, status = 200) {
  const calls: Call[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    const body = new URLSearchParams(String(init?.body));
    calls.push({ url: String(input), authorization: headers.get('authorization'), body });
    const answer = answers[body.get('token') ?? ''] ?? { active: false };
    return new Response(JSON.stringify(answer), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return { calls, fetchFn };
}

function setup(answers: Record<string, unknown>, options: { cacheMaxAgeSeconds?: number; status?: number } = {}) {
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const latchkey = fakeLatchkey(answers, options.status);
  const verifier = new IntrospectionTokenVerifier({
    issuer: ISSUER,
    resource: RESOURCE,
    introspectionSecret: SECRET,
    fetch: latchkey.fetchFn,
    now: () => clock.now(),
    ...(options.cacheMaxAgeSeconds !== undefined ? { cacheMaxAgeSeconds: options.cacheMaxAgeSeconds } : {}),
  });
  return { verifier, clock, calls: latchkey.calls };
}

const nowSeconds = Date.UTC(2026, 0, 1) / 1000;
const live = (overrides: Record<string, unknown> = {}) => ({
  active: true,
  client_id: 'client-1',
  scope: 'mcp read',
  aud: RESOURCE,
  iss: ISSUER,
  exp: nowSeconds + 3600,
  iat: nowSeconds,
  token_type: 'Bearer',
  sub: 'grant-1',
  ...overrides,
});

describe('IntrospectionTokenVerifier', () => {
  it('returns the MCP SDK AuthInfo for a live token of this resource', async () => {
    const { verifier, calls } = setup({ tok: live() });
    const info = await verifier.verifyAccessToken('tok');
    expect(info).toEqual({
      token: 'tok',
      clientId: 'client-1',
      scopes: ['mcp', 'read'],
      expiresAt: nowSeconds + 3600,
      resource: new URL(RESOURCE),
      extra: { sub: 'grant-1', iss: ISSUER },
    });
    expect(calls).toHaveLength(1);
    expect(calls[0]?.url).toBe(`${ISSUER}/introspect`);
    expect(calls[0]?.authorization).toBe(`Bearer ${SECRET}`);
    expect(calls[0]?.body.get('token')).toBe('tok');
  });

  it('puts the person a token acts for in extra: sub and username (issue 12)', async () => {
    const { verifier } = setup({ tok: live({ sub: 'oidc:accounts.google.com:1098', username: 'alice@example.com' }) });
    const info = await verifier.verifyAccessToken('tok');
    expect(info.extra).toEqual({ sub: 'oidc:accounts.google.com:1098', username: 'alice@example.com', iss: ISSUER });
  });

  it('ignores a username that is not a string', async () => {
    const { verifier } = setup({ tok: live({ username: 42 }) });
    expect((await verifier.verifyAccessToken('tok')).extra).toEqual({ sub: 'grant-1', iss: ISSUER });
  });

  it('refuses an inactive token with invalid_token', async () => {
    const { verifier } = setup({});
    await expect(verifier.verifyAccessToken('unknown')).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('refuses a token issued for another resource (RFC 8707 audience)', async () => {
    const { verifier } = setup({ tok: live({ aud: 'https://other.example.com/mcp' }) });
    await expect(verifier.verifyAccessToken('tok')).rejects.toThrow('issued for another resource');
  });

  it('accepts aud as an array and a bare-origin trailing slash difference', async () => {
    const bare = new IntrospectionTokenVerifier({
      issuer: ISSUER,
      resource: 'https://mcp.example.com',
      introspectionSecret: SECRET,
      fetch: fakeLatchkey({ tok: live({ aud: ['https://x.example.com', 'https://mcp.example.com/'] }) }).fetchFn,
      now: () => nowSeconds * 1000,
    });
    await expect(bare.verifyAccessToken('tok')).resolves.toMatchObject({ clientId: 'client-1' });
  });

  it('refuses a token from another issuer', async () => {
    const { verifier } = setup({ tok: live({ iss: 'https://evil.example.com' }) });
    await expect(verifier.verifyAccessToken('tok')).rejects.toThrow('another authorization server');
  });

  it('refuses an active answer without exp: it fails closed', async () => {
    const { verifier } = setup({ tok: live({ exp: undefined }) });
    await expect(verifier.verifyAccessToken('tok')).rejects.toBeInstanceOf(InvalidTokenError);
  });

  it('caches a live answer, and asks again after the cache age', async () => {
    const { verifier, calls, clock } = setup({ tok: live() });
    await verifier.verifyAccessToken('tok');
    await verifier.verifyAccessToken('tok');
    expect(calls).toHaveLength(1);
    clock.advance(60_000);
    await verifier.verifyAccessToken('tok');
    expect(calls).toHaveLength(2);
  });

  it('never uses a cached answer past the token exp', async () => {
    const { verifier, calls, clock } = setup({ tok: live({ exp: nowSeconds + 10 }) });
    await verifier.verifyAccessToken('tok');
    clock.advance(10_000);
    await expect(verifier.verifyAccessToken('tok')).rejects.toBeInstanceOf(InvalidTokenError);
    expect(calls).toHaveLength(2);
  });

  it('caps the cache age at 60 s and honours 0', async () => {
    const capped = setup({ tok: live() }, { cacheMaxAgeSeconds: 3600 });
    await capped.verifier.verifyAccessToken('tok');
    capped.clock.advance(60_000);
    await capped.verifier.verifyAccessToken('tok');
    expect(capped.calls).toHaveLength(2);

    const uncached = setup({ tok: live() }, { cacheMaxAgeSeconds: 0 });
    await uncached.verifier.verifyAccessToken('tok');
    await uncached.verifier.verifyAccessToken('tok');
    expect(uncached.calls).toHaveLength(2);
  });

  it('asks once for concurrent requests with the same token', async () => {
    const { verifier, calls } = setup({ tok: live() });
    await Promise.all([verifier.verifyAccessToken('tok'), verifier.verifyAccessToken('tok')]);
    expect(calls).toHaveLength(1);
  });

  it('reports a refused introspection secret as a server error, not as a bad token', async () => {
    const { verifier } = setup({ tok: live() }, { status: 401 });
    await expect(verifier.verifyAccessToken('tok')).rejects.toBeInstanceOf(ServerError);
  });

  it('reports an unreachable authorization server as a server error', async () => {
    const verifier = new IntrospectionTokenVerifier({
      issuer: ISSUER,
      resource: RESOURCE,
      introspectionSecret: SECRET,
      fetch: (() => Promise.reject(new TypeError('fetch failed'))) as typeof fetch,
    });
    await expect(verifier.verifyAccessToken('tok')).rejects.toBeInstanceOf(ServerError);
  });

  it('tells the caller only "unavailable", and the operator (onError) why', async () => {
    const details: string[] = [];
    const verifier = new IntrospectionTokenVerifier({
      issuer: ISSUER,
      resource: RESOURCE,
      introspectionSecret: SECRET,
      fetch: (() => Promise.resolve(new Response('{}', { status: 401 }))) as typeof fetch,
      onError: (detail) => details.push(detail),
    });
    const err: unknown = await verifier.verifyAccessToken('tok').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect((err as Error).message).toBe('Authorization server unavailable');
    expect(details).toEqual([expect.stringContaining('OAUTH_INTROSPECTION_SECRET')]);
  });
});

describe('parseIntrospection', () => {
  it('treats anything malformed as inactive', () => {
    expect(parseIntrospection(null)).toEqual({ active: false });
    expect(parseIntrospection({ active: 'true', client_id: 'c', exp: 1 })).toEqual({ active: false });
    expect(parseIntrospection({ active: true, exp: 1 })).toEqual({ active: false });
  });
});

import type { Response } from 'supertest';
import {
  BODIES,
  RESOURCE,
  approve,
  basicAuth,
  exchange,
  http,
  introspect,
  obtainTokens,
  postAs,
  refresh,
  register,
  useHarness,
  type Harness,
  type RegisteredClient,
  type TokenBody,
} from '../helpers/http-harness.js';

const expectOAuthError = (res: Response, status: number, error: string): void => {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.body).toEqual({ error, error_description: expect.any(String) });
};

const expectTokenResponse = (res: Response, scope: string): TokenBody => {
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers.pragma).toBe('no-cache');
  const body = res.body as TokenBody;
  expect(body).toEqual({
    access_token: expect.stringMatching(/^[A-Za-z0-9_-]{43,}$/),
    token_type: 'Bearer',
    expires_in: 3600,
    refresh_token: expect.stringMatching(/^[A-Za-z0-9_-]{43,}$/),
    scope,
  });
  expect(body.refresh_token).not.toBe(body.access_token);
  return body;
};

const isActive = async (h: Harness, token: string): Promise<boolean> => (await introspect(h, token)).active;

describe('POST /token: authorization_code', () => {
  const s = useHarness();

  it('exchanges a code for a public client', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client, { scope: 'read write' });
    const res = await exchange(s.h, client, approval);
    const body = expectTokenResponse(res, 'read write');
    const info = await introspect(s.h, body.access_token);
    expect(info).toMatchObject({ active: true, client_id: client.client_id, scope: 'read write', aud: RESOURCE });
  });

  it('accepts the exchange without redirect_uri being repeated', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    const res = await postAs(s.h, '/token', client, { grant_type: 'authorization_code', code: approval.code, code_verifier: approval.verifier });
    expectTokenResponse(res, 'read');
  });

  it('authenticates a client_secret_basic client', async () => {
    const client = await register(s.h, { ...BODIES.chatgpt, token_endpoint_auth_method: 'client_secret_basic' });
    expect(client.client_secret).toBeDefined();
    const approval = await approve(s.h, client);
    const res = await http(s.h)
      .post('/token')
      .set('Authorization', basicAuth(client.client_id, client.client_secret ?? ''))
      .type('form')
      .send({ grant_type: 'authorization_code', code: approval.code, redirect_uri: approval.redirectUri, code_verifier: approval.verifier });
    expectTokenResponse(res, 'read');
  });

  it('authenticates a client_secret_post client', async () => {
    const client = await register(s.h, BODIES.chatgpt);
    const approval = await approve(s.h, client);
    const res = await http(s.h).post('/token').type('form').send({
      grant_type: 'authorization_code',
      code: approval.code,
      redirect_uri: approval.redirectUri,
      code_verifier: approval.verifier,
      client_id: client.client_id,
      client_secret: client.client_secret ?? '',
    });
    expectTokenResponse(res, 'read');
  });

  it('an unknown client is 401 invalid_client, with a Basic challenge only when Basic was used', async () => {
    const body = { grant_type: 'authorization_code', code: 'whatever', code_verifier: 'v'.repeat(43) };
    const viaBody = await http(s.h).post('/token').type('form').send({ ...body, client_id: 'no-such-client' });
    expectOAuthError(viaBody, 401, 'invalid_client');
    expect(viaBody.headers['www-authenticate']).toBeUndefined();

    const viaBasic = await http(s.h).post('/token').set('Authorization', basicAuth('no-such-client', 'secret')).type('form').send(body);
    expectOAuthError(viaBasic, 401, 'invalid_client');
    expect(String(viaBasic.headers['www-authenticate'])).toMatch(/^Basic/);

    const malformed = await http(s.h).post('/token').set('Authorization', 'Basic !!!').type('form').send(body);
    expectOAuthError(malformed, 401, 'invalid_client');
    expect(String(malformed.headers['www-authenticate'])).toMatch(/^Basic/);

    const noClient = await http(s.h).post('/token').type('form').send(body);
    expectOAuthError(noClient, 401, 'invalid_client');
  });

  it('a wrong or missing secret is 401 invalid_client', async () => {
    const basicClient = await register(s.h, { ...BODIES.chatgpt, token_endpoint_auth_method: 'client_secret_basic' });
    const approval = await approve(s.h, basicClient);
    const form = { grant_type: 'authorization_code', code: approval.code, code_verifier: approval.verifier };
    const wrongBasic = await http(s.h).post('/token').set('Authorization', basicAuth(basicClient.client_id, 'wrong')).type('form').send(form);
    expectOAuthError(wrongBasic, 401, 'invalid_client');
    expect(String(wrongBasic.headers['www-authenticate'])).toMatch(/^Basic/);

    const postClient = await register(s.h, BODIES.chatgpt);
    const wrongPost = await http(s.h).post('/token').type('form').send({ ...form, client_id: postClient.client_id, client_secret: 'wrong' });
    expectOAuthError(wrongPost, 401, 'invalid_client');
    expect(wrongPost.headers['www-authenticate']).toBeUndefined();
    const missing = await http(s.h).post('/token').type('form').send({ ...form, client_id: postClient.client_id });
    expectOAuthError(missing, 401, 'invalid_client');

    // A public client must not present a secret.
    const publicClient = await register(s.h, BODIES.claude);
    const withSecret = await http(s.h).post('/token').type('form').send({ ...form, client_id: publicClient.client_id, client_secret: 'x' });
    expectOAuthError(withSecret, 401, 'invalid_client');

    // None of this consumed the code.
    const ok = await exchange(s.h, basicClient, approval);
    expectTokenResponse(ok, 'read');
  });

  it('a code presented twice is invalid_grant and revokes the tokens of its first use', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    const first = expectTokenResponse(await exchange(s.h, client, approval), 'read');
    expect(await isActive(s.h, first.access_token)).toBe(true);
    const refreshed = expectTokenResponse(await refresh(s.h, client, first.refresh_token ?? ''), 'read');

    const replay = await exchange(s.h, client, approval);
    expectOAuthError(replay, 400, 'invalid_grant');

    expect(await isActive(s.h, first.access_token)).toBe(false);
    expect(await isActive(s.h, refreshed.access_token)).toBe(false);
    expectOAuthError(await refresh(s.h, client, refreshed.refresh_token ?? ''), 400, 'invalid_grant');
  });

  it('a code raced by two requests yields one response with tokens, which are then revoked', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    const results = await Promise.all([exchange(s.h, client, approval), exchange(s.h, client, approval)]);
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 400);
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.body).toMatchObject({ error: 'invalid_grant' });
    const tokens = ok[0]?.body as TokenBody;
    expect(await isActive(s.h, tokens.access_token)).toBe(false);
  });

  it('a wrong verifier is invalid_grant and does not consume the code', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    for (const verifier of ['x'.repeat(43), approval.verifier.slice(0, -1) + (approval.verifier.endsWith('A') ? 'B' : 'A'), 'short']) {
      expectOAuthError(await exchange(s.h, client, { ...approval, verifier }), 400, 'invalid_grant');
    }
    const noVerifier = await postAs(s.h, '/token', client, { grant_type: 'authorization_code', code: approval.code, redirect_uri: approval.redirectUri });
    expectOAuthError(noVerifier, 400, 'invalid_grant');
    expectTokenResponse(await exchange(s.h, client, approval), 'read');
  });

  it('a code is bound to its redirect_uri and its client', async () => {
    const client = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://claude.ai/api/mcp/auth_callback', 'https://claude.com/api/mcp/auth_callback'] });
    const approval = await approve(s.h, client);
    expectOAuthError(await exchange(s.h, client, { ...approval, redirectUri: 'https://claude.com/api/mcp/auth_callback' }), 400, 'invalid_grant');

    const thief = await register(s.h, BODIES.claude);
    expectOAuthError(await exchange(s.h, thief, approval), 400, 'invalid_grant');

    expectTokenResponse(await exchange(s.h, client, approval), 'read');
  });

  it('an unknown, missing or expired code is invalid_grant / invalid_request', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    expectOAuthError(await exchange(s.h, client, { ...approval, code: 'no-such-code' }), 400, 'invalid_grant');
    const missing = await postAs(s.h, '/token', client, { grant_type: 'authorization_code', code_verifier: approval.verifier });
    expectOAuthError(missing, 400, 'invalid_request');
    s.h.clock.advance(600_001);
    expectOAuthError(await exchange(s.h, client, approval), 400, 'invalid_grant');
  });

  it('a client that did not register refresh_token gets no refresh token (and no null field)', async () => {
    const client = await register(s.h, { ...BODIES.claude, grant_types: ['authorization_code'] });
    const approval = await approve(s.h, client);
    const res = await exchange(s.h, client, approval);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), token_type: 'Bearer', expires_in: 3600, scope: 'read' });
  });

  it('a code survives a restart', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    await s.h.restart();
    expectTokenResponse(await exchange(s.h, client, approval), 'read');
    await s.h.restart();
    expectOAuthError(await exchange(s.h, client, approval), 400, 'invalid_grant');
  });
});

describe('POST /token: refresh_token', () => {
  const s = useHarness();

  const setup = async (h: Harness, body: object = BODIES.claude): Promise<{ client: RegisteredClient; tokens: TokenBody }> => {
    const client = await register(h, body);
    const tokens = await obtainTokens(h, client, { scope: 'read write' });
    return { client, tokens };
  };

  it('rotates the refresh token on every use', async () => {
    const { client, tokens } = await setup(s.h);
    const second = expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
    expect(second.refresh_token).not.toBe(tokens.refresh_token);
    expect(second.access_token).not.toBe(tokens.access_token);
    expect(await introspect(s.h, second.access_token)).toMatchObject({ active: true, scope: 'read write', aud: RESOURCE });
    const third = expectTokenResponse(await refresh(s.h, client, second.refresh_token ?? ''), 'read write');
    expect(third.refresh_token).not.toBe(second.refresh_token);
  });

  it('works for confidential clients too, with their authentication', async () => {
    const { client, tokens } = await setup(s.h, BODIES.chatgpt);
    expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
    const unauthenticated = await http(s.h)
      .post('/token')
      .type('form')
      .send({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token ?? '', client_id: client.client_id });
    expectOAuthError(unauthenticated, 401, 'invalid_client');
  });

  it('may narrow the scope but not widen it', async () => {
    const { client, tokens } = await setup(s.h);
    const narrowed = expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? '', { scope: 'read' }), 'read');
    expect((await introspect(s.h, narrowed.access_token)).scope).toBe('read');
    expectOAuthError(await refresh(s.h, client, narrowed.refresh_token ?? '', { scope: 'read admin' }), 400, 'invalid_scope');
    // The grant keeps its full scope for later refreshes.
    expectTokenResponse(await refresh(s.h, client, narrowed.refresh_token ?? ''), 'read write');
  });

  it('refuses a scope outside the grant, even one the server does not know, without rotating (RFC 6749 §6)', async () => {
    const { client, tokens } = await setup(s.h);
    expectOAuthError(await refresh(s.h, client, tokens.refresh_token ?? '', { scope: 'read claudeai' }), 400, 'invalid_scope');
    expectOAuthError(await refresh(s.h, client, tokens.refresh_token ?? '', { scope: 'claudeai' }), 400, 'invalid_scope');
    expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
  });

  it('a refresh token is bound to its client', async () => {
    const { tokens } = await setup(s.h);
    const other = await register(s.h, BODIES.claude);
    expectOAuthError(await refresh(s.h, other, tokens.refresh_token ?? ''), 400, 'invalid_grant');
  });

  it('the just-rotated token still works within the grace window', async () => {
    const { client, tokens } = await setup(s.h);
    const a = expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
    s.h.clock.advance(29_000);
    const b = expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
    expect(b.refresh_token).not.toBe(a.refresh_token);
    expect(await isActive(s.h, a.access_token)).toBe(true);
    expect(await isActive(s.h, b.access_token)).toBe(true);
    expectTokenResponse(await refresh(s.h, client, a.refresh_token ?? ''), 'read write');
    expectTokenResponse(await refresh(s.h, client, b.refresh_token ?? ''), 'read write');
  });

  it('reuse after the grace window revokes the whole grant', async () => {
    const { client, tokens } = await setup(s.h);
    const unrelated = await obtainTokens(s.h, client);
    const rotated = expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
    s.h.clock.advance(31_000);
    expectOAuthError(await refresh(s.h, client, tokens.refresh_token ?? ''), 400, 'invalid_grant');
    expect(await isActive(s.h, tokens.access_token)).toBe(false);
    expect(await isActive(s.h, rotated.access_token)).toBe(false);
    expectOAuthError(await refresh(s.h, client, rotated.refresh_token ?? ''), 400, 'invalid_grant');
    // Other grants of the same client are untouched.
    expect(await isActive(s.h, unrelated.access_token)).toBe(true);
    expectTokenResponse(await refresh(s.h, client, unrelated.refresh_token ?? ''), 'read');
  });

  it('with OAUTH_REFRESH_REUSE_GRACE=0 any reuse revokes the grant', async () => {
    const h = await s.start({ OAUTH_REFRESH_REUSE_GRACE: '0' });
    const { client, tokens } = await setup(h);
    const rotated = expectTokenResponse(await refresh(h, client, tokens.refresh_token ?? ''), 'read write');
    // The clock has not moved: even a same-millisecond replay is reuse when there is no grace.
    expectOAuthError(await refresh(h, client, tokens.refresh_token ?? ''), 400, 'invalid_grant');
    expect(await isActive(h, rotated.access_token)).toBe(false);
    expectOAuthError(await refresh(h, client, rotated.refresh_token ?? ''), 400, 'invalid_grant');
  });

  it('an expired refresh token is invalid_grant', async () => {
    const h = await s.start({ OAUTH_REFRESH_TOKEN_TTL: '7200' });
    const { client, tokens } = await setup(h);
    h.clock.advance(7_200_001);
    expectOAuthError(await refresh(h, client, tokens.refresh_token ?? ''), 400, 'invalid_grant');
  });

  it('a missing or unknown refresh token is invalid_request / invalid_grant', async () => {
    const { client } = await setup(s.h);
    expectOAuthError(await postAs(s.h, '/token', client, { grant_type: 'refresh_token' }), 400, 'invalid_request');
    expectOAuthError(await refresh(s.h, client, 'no-such-token'), 400, 'invalid_grant');
  });

  it('refresh tokens survive a restart', async () => {
    const { client, tokens } = await setup(s.h);
    await s.h.restart();
    expect(await isActive(s.h, tokens.access_token)).toBe(true);
    expectTokenResponse(await refresh(s.h, client, tokens.refresh_token ?? ''), 'read write');
  });
});

describe('POST /token: request format', () => {
  const s = useHarness();

  it('an unknown grant_type is unsupported_grant_type', async () => {
    const client = await register(s.h, BODIES.claude);
    for (const grantType of ['password', 'client_credentials', 'urn:ietf:params:oauth:grant-type:device_code']) {
      expectOAuthError(await postAs(s.h, '/token', client, { grant_type: grantType }), 400, 'unsupported_grant_type');
    }
    expectOAuthError(await postAs(s.h, '/token', client, {}), 400, 'invalid_request');
  });

  it('a JSON body is invalid_request', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    const res = await http(s.h).post('/token').send({
      grant_type: 'authorization_code',
      code: approval.code,
      code_verifier: approval.verifier,
      client_id: client.client_id,
    });
    expectOAuthError(res, 400, 'invalid_request');
    // The code was not consumed.
    expectTokenResponse(await exchange(s.h, client, approval), 'read');
  });

  it('a repeated parameter is invalid_request', async () => {
    const client = await register(s.h, BODIES.claude);
    const approval = await approve(s.h, client);
    const base = `grant_type=authorization_code&client_id=${client.client_id}&code_verifier=${approval.verifier}`;
    const twoCodes = await http(s.h).post('/token').type('form').send(`${base}&code=a&code=b`);
    expectOAuthError(twoCodes, 400, 'invalid_request');
    const twoGrants = await http(s.h).post('/token').type('form').send(`${base}&code=${approval.code}&grant_type=refresh_token`);
    expectOAuthError(twoGrants, 400, 'invalid_request');
    const twoIds = await http(s.h).post('/token').type('form').send(`${base}&code=${approval.code}&client_id=${client.client_id}`);
    expect(twoIds.status).toBe(400);
    expectTokenResponse(await exchange(s.h, client, approval), 'read');
  });

  it('credentials in both the header and the body are invalid_request', async () => {
    const client = await register(s.h, { ...BODIES.chatgpt, token_endpoint_auth_method: 'client_secret_basic' });
    const approval = await approve(s.h, client);
    const res = await http(s.h)
      .post('/token')
      .set('Authorization', basicAuth(client.client_id, client.client_secret ?? ''))
      .type('form')
      .send({ grant_type: 'authorization_code', code: approval.code, code_verifier: approval.verifier, client_secret: client.client_secret ?? '' });
    expect(res.status).toBe(400);
    expect((res.body as { error: string }).error).toBe('invalid_request');
  });

  it('an oversized or malformed body is a JSON 4xx', async () => {
    const big = await http(s.h).post('/token').type('form').send(`grant_type=authorization_code&code=${'a'.repeat(20_000)}`);
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: 'invalid_request' });
    const bad = await http(s.h).post('/token').set('Content-Type', 'application/x-www-form-urlencoded; charset=utf-7').send('a=b');
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.status).toBeLessThan(500);
    expect(bad.headers['content-type']).toMatch(/^application\/json/);
  });

  it('a body that does not decompress is a JSON 400, not a 500', async () => {
    const res = await http(s.h)
      .post('/token')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .set('Content-Encoding', 'gzip')
      .send('grant_type=authorization_code');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });

  it('the token rate limit comes from OAUTH_TOKEN_RATE_LIMIT', async () => {
    const limited = await s.start({ OAUTH_TOKEN_RATE_LIMIT: '2' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await http(limited).post('/token').type('form').send({ grant_type: 'x' })).status);
    expect(statuses).toEqual([400, 400, 429]);
  });

  it('GET /token is a JSON 405', async () => {
    const res = await http(s.h).get('/token');
    expect(res.status).toBe(405);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.allow).toContain('POST');
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });
});

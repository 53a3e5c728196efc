import {
  BODIES,
  basicAuth,
  http,
  introspect,
  obtainTokens,
  postAs,
  refresh,
  register,
  useHarness,
} from '../helpers/http-harness.js';

describe('POST /revoke', () => {
  const s = useHarness();

  it('answers 200 for an unknown token (RFC 7009 §2.2)', async () => {
    const client = await register(s.h, BODIES.claude);
    for (const hint of [undefined, 'access_token', 'refresh_token', 'something_else']) {
      const res = await postAs(s.h, '/revoke', client, { token: 'no-such-token', ...(hint ? { token_type_hint: hint } : {}) });
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('revoking a refresh token revokes its whole grant, access token included', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    const other = await obtainTokens(s.h, client);
    const res = await postAs(s.h, '/revoke', client, { token: tokens.refresh_token ?? '', token_type_hint: 'refresh_token' });
    expect(res.status).toBe(200);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(false);
    const again = await refresh(s.h, client, tokens.refresh_token ?? '');
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: 'invalid_grant' });
    // Another grant of the same client is untouched.
    expect((await introspect(s.h, other.access_token)).active).toBe(true);
  });

  it('finds a refresh token with a wrong hint, or none', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    expect((await postAs(s.h, '/revoke', client, { token: tokens.refresh_token ?? '', token_type_hint: 'access_token' })).status).toBe(200);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(false);
    const more = await obtainTokens(s.h, client);
    expect((await postAs(s.h, '/revoke', client, { token: more.refresh_token ?? '' })).status).toBe(200);
    expect((await refresh(s.h, client, more.refresh_token ?? '')).status).toBe(400);
  });

  it('revokes an access token alone', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    expect((await postAs(s.h, '/revoke', client, { token: tokens.access_token })).status).toBe(200);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(false);
    // The refresh token still works: the client can get a new access token.
    const renewed = await refresh(s.h, client, tokens.refresh_token ?? '');
    expect(renewed.status).toBe(200);
  });

  it("leaves another client's tokens untouched, and says nothing about them", async () => {
    const owner = await register(s.h, BODIES.claude);
    const intruder = await register(s.h, BODIES.chatgpt);
    const tokens = await obtainTokens(s.h, owner);
    const access = await postAs(s.h, '/revoke', intruder, { token: tokens.access_token });
    const refreshRes = await postAs(s.h, '/revoke', intruder, { token: tokens.refresh_token ?? '', token_type_hint: 'refresh_token' });
    expect(access.status).toBe(200);
    expect(refreshRes.status).toBe(200);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(true);
    expect((await refresh(s.h, owner, tokens.refresh_token ?? '')).status).toBe(200);
  });

  it('authenticates confidential clients with Basic or post', async () => {
    const basicClient = await register(s.h, { ...BODIES.chatgpt, token_endpoint_auth_method: 'client_secret_basic' });
    const tokens = await obtainTokens(s.h, basicClient);
    const wrong = await http(s.h)
      .post('/revoke')
      .set('Authorization', basicAuth(basicClient.client_id, 'wrong'))
      .type('form')
      .send({ token: tokens.access_token });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ error: 'invalid_client' });
    expect(String(wrong.headers['www-authenticate'])).toMatch(/^Basic/);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(true);

    expect((await postAs(s.h, '/revoke', basicClient, { token: tokens.access_token })).status).toBe(200);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(false);

    const postClient = await register(s.h, BODIES.chatgpt);
    const more = await obtainTokens(s.h, postClient);
    expect((await postAs(s.h, '/revoke', postClient, { token: more.access_token })).status).toBe(200);
    expect((await introspect(s.h, more.access_token)).active).toBe(false);
  });

  it('rejects an unknown client with 401 and a missing token with invalid_request', async () => {
    const unknown = await http(s.h).post('/revoke').type('form').send({ token: 'x', client_id: 'no-such-client' });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toMatchObject({ error: 'invalid_client' });
    const client = await register(s.h, BODIES.claude);
    const missing = await postAs(s.h, '/revoke', client, {});
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: 'invalid_request' });
    const json = await http(s.h).post('/revoke').send({ token: 'x', client_id: client.client_id });
    expect(json.status).toBe(400);
    expect(json.body).toMatchObject({ error: 'invalid_request' });
  });

  it('GET /revoke is a JSON 405', async () => {
    const res = await http(s.h).get('/revoke');
    expect(res.status).toBe(405);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });
});

import {
  BODIES,
  INTROSPECTION_SECRET,
  ISSUER,
  RESOURCE,
  basicAuth,
  http,
  introspect,
  obtainTokens,
  register,
  useHarness,
} from '../helpers/http-harness.js';

describe('POST /introspect', () => {
  const s = useHarness();

  it('refuses callers without the introspection secret with 401', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    for (const authorization of [
      undefined,
      'Bearer wrong-secret-0123456789',
      `Bearer ${INTROSPECTION_SECRET}x`,
      basicAuth('rs', 'wrong-secret-0123456789'),
      `Basic ${Buffer.from(`rs:${INTROSPECTION_SECRET}x`).toString('base64')}`,
      'Basic !!!',
      INTROSPECTION_SECRET,
      // A client's own token is not a credential for introspection.
      `Bearer ${tokens.access_token}`,
    ]) {
      let req = http(s.h).post('/introspect').type('form');
      if (authorization) req = req.set('Authorization', authorization);
      const res = await req.send({ token: tokens.access_token });
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({ error: 'invalid_client' });
      expect(res.headers['www-authenticate']).toBeDefined();
      expect(res.text).not.toContain(client.client_id);
    }
  });

  it('limits failed calls per address (guessing the secret), never calls with the secret', async () => {
    const h = await s.start({ OAUTH_INTROSPECTION_RATE_LIMIT: '5' });
    const wrong = () => http(h).post('/introspect').set('Authorization', 'Bearer wrong-secret-0123456789').type('form').send({ token: 'x' });
    for (let i = 0; i < 5; i++) expect((await wrong()).status).toBe(401);
    const limited = await wrong();
    expect(limited.status).toBe(429);
    expect(limited.body).toMatchObject({ error: 'temporarily_unavailable' });
    // The resource server holding the secret is not slowed down by the guesser, nor by itself.
    for (let i = 0; i < 20; i++) {
      const ok = await http(h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({ token: 'x' });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ active: false });
    }
  });

  it('refuses everybody when no secret is configured', async () => {
    const h = await s.start({ OAUTH_INTROSPECTION_SECRET: '' });
    const res = await http(h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({ token: 'x' });
    expect(res.status).toBe(401);
    expect((res.body as { error_description: string }).error_description).toMatch(/OAUTH_INTROSPECTION_SECRET/);
  });

  it('accepts the secret as a Bearer token, and as the password of Basic', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    const bearer = await http(s.h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({ token: tokens.access_token });
    expect(bearer.status).toBe(200);
    expect(bearer.headers['cache-control']).toBe('no-store');
    expect((bearer.body as { active: boolean }).active).toBe(true);
    const basic = await http(s.h)
      .post('/introspect')
      .set('Authorization', basicAuth('my-mcp-server', INTROSPECTION_SECRET))
      .type('form')
      .send({ token: tokens.access_token });
    expect(basic.status).toBe(200);
    expect((basic.body as { active: boolean }).active).toBe(true);
  });

  it('describes a live access token', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client, { scope: 'read write' });
    const now = Math.floor(s.h.clock.now() / 1000);
    const info = await introspect(s.h, tokens.access_token);
    expect(info).toMatchObject({
      active: true,
      client_id: client.client_id,
      scope: 'read write',
      aud: RESOURCE,
      iss: ISSUER,
      iat: now,
      exp: now + 3600,
      token_type: 'Bearer',
    });
  });

  it('an expired access token is inactive', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    s.h.clock.advance(3_599_000);
    expect((await introspect(s.h, tokens.access_token)).active).toBe(true);
    s.h.clock.advance(1_000);
    expect(await introspect(s.h, tokens.access_token)).toEqual({ active: false });
  });

  it('unknown tokens, refresh tokens and codes are inactive', async () => {
    const client = await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    expect(await introspect(s.h, 'no-such-token')).toEqual({ active: false });
    expect(await introspect(s.h, '')).toEqual({ active: false });
    expect(await introspect(s.h, tokens.refresh_token ?? '')).toEqual({ active: false });
    expect(await introspect(s.h, tokens.approval.code)).toEqual({ active: false });
  });

  it('a missing or repeated token parameter is invalid_request', async () => {
    const missing = await http(s.h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({});
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: 'invalid_request' });
    const repeated = await http(s.h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send('token=a&token=b');
    expect(repeated.status).toBe(400);
    expect(repeated.body).toMatchObject({ error: 'invalid_request' });
  });

  it('GET /introspect is a JSON 405', async () => {
    const res = await http(s.h).get('/introspect');
    expect(res.status).toBe(405);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
  });
});

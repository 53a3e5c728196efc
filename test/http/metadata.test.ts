import type { Response } from 'supertest';
import { BODIES, INTROSPECTION_SECRET, ISSUER, approve, exchange, http, obtainTokens, openConsent, register, startHarness, useHarness } from '../helpers/http-harness.js';

const CORS_ENDPOINTS = ['/.well-known/oauth-authorization-server', '/register', '/token', '/revoke', '/introspect'];

describe('GET /.well-known/oauth-authorization-server', () => {
  const s = useHarness();

  it('advertises every field the MCP clients need, with the issuer string verbatim', async () => {
    const res = await http(s.h).get('/.well-known/oauth-authorization-server');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual(
      expect.objectContaining({
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}/authorize`,
        token_endpoint: `${ISSUER}/token`,
        registration_endpoint: `${ISSUER}/register`,
        revocation_endpoint: `${ISSUER}/revoke`,
        introspection_endpoint: `${ISSUER}/introspect`,
        response_types_supported: ['code'],
        grant_types_supported: ['authorization_code', 'refresh_token'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
        scopes_supported: ['read', 'write', 'admin'],
        authorization_response_iss_parameter_supported: true,
      }),
    );
    // Exactly the configured string: no trailing slash added (new URL().href would add one).
    const issuer = (res.body as { issuer: string }).issuer;
    expect(issuer).toBe('https://auth.example.com');
    expect(issuer.endsWith('/')).toBe(false);
    expect(res.text).not.toContain('null');
  });

  it('uses a pathful issuer exactly as configured', async () => {
    const h = await s.start({ OAUTH_ISSUER_URL: 'https://example.com/auth' });
    const res = await http(h).get('/.well-known/oauth-authorization-server');
    expect(res.body).toMatchObject({ issuer: 'https://example.com/auth', token_endpoint: 'https://example.com/auth/token' });
  });

  it('never derives the issuer from request headers', async () => {
    const res = await http(s.h)
      .get('/.well-known/oauth-authorization-server')
      .set('Host', 'evil.example')
      .set('X-Forwarded-Host', 'evil.example')
      .set('X-Forwarded-Proto', 'http');
    expect(res.text).not.toContain('evil.example');
    expect((res.body as { issuer: string }).issuer).toBe(ISSUER);
  });

  it('does not serve an OpenID configuration', async () => {
    const res = await http(s.h).get('/.well-known/openid-configuration');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ error: 'not_found' });
  });
});

describe('CORS', () => {
  const s = useHarness();

  it.each(CORS_ENDPOINTS)('answers the browser preflight at %s', async (endpoint) => {
    const res = await http(s.h)
      .options(endpoint)
      .set('Origin', 'http://localhost:6274')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization, content-type, mcp-protocol-version');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase().split(/\s*,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'mcp-protocol-version']));
    expect(String(res.headers['access-control-allow-methods'])).toContain('POST');
  });

  it.each(CORS_ENDPOINTS)('sets Access-Control-Allow-Origin on responses from %s', async (endpoint) => {
    const req = endpoint.startsWith('/.well-known') ? http(s.h).get(endpoint) : http(s.h).post(endpoint).type('form').send({});
    const res = await req.set('Origin', 'http://localhost:6274');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('exposes WWW-Authenticate so browser clients can read the challenge', async () => {
    const res = await http(s.h).post('/introspect').set('Origin', 'http://localhost:6274').type('form').send({ token: 'x' });
    expect(res.status).toBe(401);
    expect(String(res.headers['access-control-expose-headers'])).toMatch(/WWW-Authenticate/i);
  });

  it('is not enabled on /authorize or the consent form', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expect(page.res.headers['access-control-allow-origin']).toBeUndefined();

    const withOrigin = await http(s.h).get('/authorize').set('Origin', 'https://evil.example').query({ client_id: client.client_id });
    expect(withOrigin.headers['access-control-allow-origin']).toBeUndefined();

    for (const endpoint of ['/authorize', '/authorize/consent']) {
      const preflight = await http(s.h)
        .options(endpoint)
        .set('Origin', 'https://evil.example')
        .set('Access-Control-Request-Method', 'POST');
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.headers['access-control-allow-headers']).toBeUndefined();
      expect(preflight.status).not.toBe(204);
    }

    const post = await http(s.h)
      .post('/authorize/consent')
      .set('Origin', 'https://evil.example')
      .set('Cookie', `__Host-latchkey_csrf=${page.csrf}`)
      .type('form')
      .send({ consent: page.consent, decision: 'deny' });
    expect(post.status).toBe(303);
    expect(post.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('GET /oauth/stats', () => {
  const s = useHarness();

  it('counts clients, live codes and tokens, without any secret', async () => {
    const empty = await http(s.h).get('/oauth/stats');
    expect(empty.status).toBe(200);
    expect(empty.headers['cache-control']).toBe('no-store');
    // A stranger sees counts only: uptime would say when a restart cleared the limits.
    expect(empty.body).toEqual({ clients: 0, authorization_codes: 0, access_tokens: 0, refresh_tokens: 0 });

    const client = await register(s.h, BODIES.chatgpt);
    await register(s.h, BODIES.claude);
    const tokens = await obtainTokens(s.h, client);
    const pending = await approve(s.h, client);

    s.h.clock.advance(90_000);
    const res = await http(s.h).get('/oauth/stats').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`);
    expect(res.body).toEqual({
      clients: 2,
      authorization_codes: 1,
      access_tokens: 1,
      refresh_tokens: 1,
      uptime_seconds: 90,
      version: '0.1.0',
    });
    for (const secret of [tokens.access_token, tokens.refresh_token ?? '', pending.code, client.client_secret ?? '', client.client_id]) {
      expect(res.text).not.toContain(secret);
    }

    const wrongSecret = await http(s.h).get('/oauth/stats').set('Authorization', 'Bearer not-the-secret-0123456789');
    expect(wrongSecret.body).not.toHaveProperty('uptime_seconds');
    expect(wrongSecret.body).not.toHaveProperty('version');

    // The pending code is no longer counted once it is exchanged.
    expect((await exchange(s.h, client, pending)).status).toBe(200);
    const after = await http(s.h).get('/oauth/stats');
    expect(after.body).toMatchObject({ authorization_codes: 0, access_tokens: 2, refresh_tokens: 2 });
  });
});

describe('GET /oauth/stats is no way to guess the introspection secret', () => {
  const s = useHarness({ OAUTH_INTROSPECTION_RATE_LIMIT: '2' });

  it('wrong secrets are limited like at /introspect; no secret and the right one never are', async () => {
    const wrong = (): Promise<Response> => http(s.h).get('/oauth/stats').set('Authorization', 'Bearer guess-guess-guess-guess');
    expect((await wrong()).status).toBe(200);
    expect((await wrong()).status).toBe(200);
    expect((await wrong()).status).toBe(429);
    for (let i = 0; i < 3; i++) expect((await http(s.h).get('/oauth/stats')).status).toBe(200);
    expect((await http(s.h).get('/oauth/stats').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`)).body).toHaveProperty('version');
  });
});

describe('health and unknown paths', () => {
  const s = useHarness();

  it('GET /healthz is 200 when the store is writable', async () => {
    const res = await http(s.h).get('/healthz');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('an unknown path is a JSON 404', async () => {
    const res = await http(s.h).get('/no/such/thing');
    expect(res.status).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ error: 'not_found' });
    const post = await http(s.h).post('/nowhere').send({ a: 1 });
    expect(post.status).toBe(404);
  });

  it('an unexpected failure is a generic 500 JSON without a stack trace, and the harness notices it', async () => {
    const h = await startHarness();
    try {
      h.services.store.counts = async () => {
        throw new Error('boom at /work/secret/path.ts:1:1');
      };
      const res = await http(h).get('/oauth/stats');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: 'server_error', error_description: expect.any(String) });
      expect(res.text).not.toContain('boom');
      expect(() => h.assertNoServerErrors()).toThrow(/GET \/oauth\/stats → 500/);
    } finally {
      await h.close();
    }
  });

  it('sends security headers everywhere and no X-Powered-By', async () => {
    const res = await http(s.h).get('/healthz');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(String(res.headers['content-security-policy'])).toContain("frame-ancestors 'none'");
  });

  it('sends exactly our CSP, without helmet defaults such as upgrade-insecure-requests (breaks http://localhost)', async () => {
    const res = await http(s.h).get('/healthz');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none';style-src 'self';img-src 'self';form-action 'self';frame-ancestors 'none';base-uri 'none'",
    );
  });
});

describe('routing of the JSON endpoints', () => {
  const s = useHarness();

  it.each(['/token', '/TOKEN', '/token/', '/Introspect/', '/register/', '/REVOKE'])('%s reaches its endpoint, as Express matches paths', async (p) => {
    const res = await http(s.h).post(p).type('form').send('');
    expect(res.status).not.toBe(404);
    expect(res.status).toBeLessThan(500);
    expect(res.body).toMatchObject({ error: expect.any(String) });
  });

  it('a path under an endpoint is not that endpoint', async () => {
    expect((await http(s.h).post('/token/extra').type('form').send('')).status).toBe(404);
  });
});

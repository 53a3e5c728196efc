import { BODIES, ISSUER, approve, http, nullPaths, openConsent, register, useHarness, type RegisteredClient } from '../helpers/http-harness.js';

describe('POST /register', () => {
  const s = useHarness();

  const expectEchoed = (body: RegisteredClient, sent: Record<string, unknown>): void => {
    for (const [key, value] of Object.entries(sent)) expect(body[key]).toEqual(value);
    expect(typeof body.client_id).toBe('string');
    expect(body.client_id.length).toBeGreaterThanOrEqual(16);
    expect(Number.isInteger(body.client_id_issued_at)).toBe(true);
    expect(Math.abs(body.client_id_issued_at - Math.floor(s.h.clock.now() / 1000))).toBeLessThanOrEqual(1);
    expect(nullPaths(body)).toEqual([]);
  };

  it('registers Claude as a public client', async () => {
    const res = await http(s.h).post('/register').send(BODIES.claude);
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.body as RegisteredClient;
    expectEchoed(body, BODIES.claude);
    expect(body).not.toHaveProperty('client_secret');
    expect(body).not.toHaveProperty('client_secret_expires_at');
  });

  it('registers Claude with client_secret_post as a confidential client', async () => {
    const res = await http(s.h).post('/register').send({ ...BODIES.claude, token_endpoint_auth_method: 'client_secret_post' });
    expect(res.status).toBe(201);
    const body = res.body as RegisteredClient;
    expect(body.token_endpoint_auth_method).toBe('client_secret_post');
    expect(typeof body.client_secret).toBe('string');
    expect((body.client_secret ?? '').length).toBeGreaterThanOrEqual(43);
    expect(body.client_secret_expires_at).toBe(0);
  });

  it('registers ChatGPT without a scope, and does not invent one', async () => {
    const res = await http(s.h).post('/register').send(BODIES.chatgpt);
    expect(res.status).toBe(201);
    const body = res.body as RegisteredClient;
    expectEchoed(body, BODIES.chatgpt);
    expect(body).not.toHaveProperty('scope');
    expect(body.client_secret_expires_at).toBe(0);
  });

  it('registers Claude Code with a portless loopback redirect URI', async () => {
    const res = await http(s.h).post('/register').send(BODIES.claudeCode);
    expect(res.status).toBe(201);
    expectEchoed(res.body as RegisteredClient, BODIES.claudeCode);
  });

  it('registers the MCP Inspector with both loopback hosts', async () => {
    const res = await http(s.h).post('/register').set('Origin', 'http://localhost:6274').send(BODIES.inspector);
    expect(res.status).toBe(201);
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expectEchoed(res.body as RegisteredClient, BODIES.inspector);
  });

  it('fills in defaults for a minimal body (RFC 7591 §2)', async () => {
    const res = await http(s.h).post('/register').send({ redirect_uris: ['https://app.example.com/cb'] });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      redirect_uris: ['https://app.example.com/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      client_secret_expires_at: 0,
    });
    expect(nullPaths(res.body)).toEqual([]);
  });

  it('treats null fields in the request as absent and never answers with null', async () => {
    const res = await http(s.h)
      .post('/register')
      .send({ ...BODIES.claude, client_uri: null, logo_uri: null, contacts: null, application_type: 'native' });
    expect(res.status).toBe(201);
    expect(nullPaths(res.body)).toEqual([]);
    expect(res.body).not.toHaveProperty('client_uri');
    expect(res.body).not.toHaveProperty('logo_uri');
    expect(res.body).toMatchObject({ application_type: 'native' });
  });

  it('gives every registration its own client_id', async () => {
    const a = await register(s.h, BODIES.claude);
    const b = await register(s.h, BODIES.claude);
    expect(a.client_id).not.toBe(b.client_id);
  });

  it.each([
    ['javascript:', 'javascript:alert(1)'],
    ['data:', 'data:text/html,<script>alert(1)</script>'],
    ['non-loopback http', 'http://evil.example.com/callback'],
    ['a fragment', 'https://app.example.com/cb#frag'],
    ['a relative URI', '/callback'],
    ['whitespace tricks', 'java\tscript:alert(1)'],
    ['mixed-case javascript', 'JaVaScRiPt:alert(1)'],
  ])('refuses %s as a redirect URI with invalid_redirect_uri', async (_name, uri) => {
    const res = await http(s.h).post('/register').send({ ...BODIES.claude, redirect_uris: ['https://ok.example.com/cb', uri] });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ error: 'invalid_redirect_uri', error_description: expect.any(String) });
  });

  it('refuses a registration without redirect URIs', async () => {
    for (const redirect_uris of [undefined, []]) {
      const res = await http(s.h).post('/register').send({ client_name: 'x', redirect_uris });
      expect(res.status).toBe(400);
      expect(['invalid_redirect_uri', 'invalid_client_metadata']).toContain((res.body as { error: string }).error);
      expect(typeof (res.body as { error_description: unknown }).error_description).toBe('string');
    }
  });

  it.each([
    ['an unsupported grant type', { grant_types: ['client_credentials'] }],
    ['the implicit response type', { response_types: ['token'] }],
    ['an unsupported auth method', { token_endpoint_auth_method: 'private_key_jwt' }],
    ['refresh_token without authorization_code', { grant_types: ['refresh_token'], response_types: [] }],
    ['inconsistent grant and response types', { grant_types: ['authorization_code'], response_types: [] }],
    ['a bad application_type', { application_type: 'desktop' }],
    ['a non-URL client_uri', { client_uri: 'not a url' }],
    ['a wrongly typed client_name', { client_name: 42 }],
  ])('refuses %s with invalid_client_metadata', async (_name, patch) => {
    const res = await http(s.h).post('/register').send({ ...BODIES.claude, ...patch });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_client_metadata', error_description: expect.any(String) });
  });

  it('takes only application/json (RFC 7591 §3.1): 415 for any other type, nothing stored', async () => {
    const before = (await http(s.h).get('/oauth/stats')).body as { clients: number };
    const json = JSON.stringify(BODIES.claude);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']) {
      const res = await http(s.h).post('/register').set('Content-Type', type).send(json);
      expect(res.status).toBe(415);
      expect(res.body).toEqual({ error: 'invalid_client_metadata', error_description: expect.stringContaining('application/json') });
    }
    const ok = await http(s.h).post('/register').set('Content-Type', 'application/json; charset=utf-8').send(json);
    expect(ok.status).toBe(201);
    const after = (await http(s.h).get('/oauth/stats')).body as { clients: number };
    expect(after.clients).toBe(before.clients + 1);
  });

  it('refuses a body that is not a JSON object', async () => {
    const broken = await http(s.h).post('/register').set('Content-Type', 'application/json').send('{"redirect_uris": [');
    expect(broken.status).toBe(400);
    expect(broken.headers['content-type']).toMatch(/^application\/json/);
    expect((broken.body as { error: string }).error).toMatch(/^invalid_(request|client_metadata)$/);

    const form = await http(s.h).post('/register').type('form').send({ redirect_uris: 'https://app.example.com/cb' });
    expect(form.status).toBe(415);
    expect((form.body as { error: string }).error).toBe('invalid_client_metadata');

    for (const json of ['"a string"', '[1,2]', 'null', '42']) {
      const res = await http(s.h).post('/register').set('Content-Type', 'application/json').send(json);
      expect(res.status).toBe(400);
      expect((res.body as { error: string }).error).toMatch(/^invalid_(request|client_metadata)$/);
    }

    const empty = await http(s.h).post('/register');
    expect(empty.status).toBe(400);
  });

  it('refuses a body over 16 KiB with a JSON 413', async () => {
    const res = await http(s.h)
      .post('/register')
      .send({ ...BODIES.claude, client_name: 'x'.repeat(17 * 1024) });
    expect(res.status).toBe(413);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });

  it('answers GET /register with a JSON 405', async () => {
    const res = await http(s.h).get('/register');
    expect(res.status).toBe(405);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers.allow).toContain('POST');
    expect(res.body).toMatchObject({ error: 'invalid_request' });
  });

  it('at OAUTH_MAX_CLIENTS, a flood of registrations evicts the oldest never-approved client instead of blocking new connections', async () => {
    const h = await s.start({ OAUTH_MAX_CLIENTS: '3' });
    const approved = await register(h, BODIES.chatgpt);
    await approve(h, approved);
    const flood: string[] = [];
    for (let i = 0; i < 5; i++) {
      h.clock.advance(1000);
      flood.push((await register(h, BODIES.inspector)).client_id);
    }
    expect((await http(h).get('/oauth/stats').then((r) => r.body as { clients: number })).clients).toBe(3);
    // The approved client stays; the newest registrations are there, the oldest went.
    expect(await h.services.store.getClient(approved.client_id)).toBeDefined();
    expect(await h.services.store.getClient(flood[0] ?? '')).toBeUndefined();
    expect(await h.services.store.getClient(flood[4] ?? '')).toBeDefined();
    // Each eviction is a client deletion in the audit log, by Latchkey, because of the cap.
    const deletions = await h.services.backend.audit.list({ limit: 100, type: 'client.deleted' });
    expect(deletions).toHaveLength(3);
    for (const e of deletions) expect(e).toMatchObject({ actor: 'system', detail: { reason: 'cap', count: 1 } });
    // A real host still connects.
    const claude = await register(h, BODIES.claude);
    expect((await approve(h, claude)).code).toBeTruthy();
  });

  it('refuses only when every client is approved or in use', async () => {
    const h = await s.start({ OAUTH_MAX_CLIENTS: '2' });
    await approve(h, await register(h, BODIES.claude));
    await approve(h, await register(h, BODIES.chatgpt));
    const res = await http(h).post('/register').send(BODIES.inspector);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect((res.body as { error_description: string }).error_description).toMatch(/OAUTH_MAX_CLIENTS/);
    const stats = await http(h).get('/oauth/stats');
    expect((stats.body as { clients: number }).clients).toBe(2);
  });

  it('rate-limits registrations per address', async () => {
    const h = await s.start({ OAUTH_REGISTRATION_RATE_LIMIT: '2' });
    await register(h, BODIES.claude);
    await register(h, BODIES.claude);
    const res = await http(h).post('/register').send(BODIES.claude);
    expect(res.status).toBe(429);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ error: 'temporarily_unavailable' });
  });

  it('keeps registrations across a restart: the client still works at /authorize', async () => {
    const client = await register(s.h, BODIES.claude);
    const confidential = await register(s.h, BODIES.chatgpt);
    await s.h.restart();

    const page = await openConsent(s.h, client);
    expect(page.res.status).toBe(200);
    expect(page.res.text).toContain('claudeai');
    const other = await openConsent(s.h, confidential);
    expect(other.res.text).toContain('ChatGPT');
    const stats = await http(s.h).get('/oauth/stats');
    expect((stats.body as { clients: number }).clients).toBe(2);
    // The metadata issuer is unchanged by a restart.
    const meta = await http(s.h).get('/.well-known/oauth-authorization-server');
    expect((meta.body as { issuer: string }).issuer).toBe(ISSUER);
  });

  it('the cleanup deletes clients never approved after OAUTH_UNUSED_CLIENT_TTL, never an approved one', async () => {
    const h = await s.start({ OAUTH_UNUSED_CLIENT_TTL: '3600' });
    const flood = await register(h, BODIES.claude);
    const approved = await register(h, BODIES.chatgpt);
    await approve(h, approved);
    h.clock.advance(3_599_000);
    await h.services.cleanup();
    expect(await h.services.store.getClient(flood.client_id)).toBeDefined();
    h.clock.advance(2000);
    await h.services.cleanup();
    expect(await h.services.store.getClient(flood.client_id)).toBeUndefined();
    expect(await h.services.store.getClient(approved.client_id)).toBeDefined();
    // The deleted client learns it must register again: invalid_client, as after any deletion.
    const token = await http(h).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: 'x', client_id: flood.client_id });
    expect(token.status).toBe(401);
    expect((token.body as { error: string }).error).toBe('invalid_client');
  });
});

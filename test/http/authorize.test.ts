import type { Response } from 'supertest';
import {
  BODIES,
  ISSUER,
  OTHER_RESOURCE,
  RESOURCE,
  approve,
  authorizeQuery,
  exchange,
  http,
  introspect,
  obtainTokens,
  PIN,
  openConsent,
  pkce,
  postConsent,
  redirectParams,
  register,
  useHarness,
  type AuthorizeOptions,
  type RegisteredClient,
} from '../helpers/http-harness.js';

describe('GET /authorize', () => {
  const s = useHarness();

  const authorize = (client: RegisteredClient, opts: AuthorizeOptions = {}): Promise<Response> =>
    http(s.h).get('/authorize').query(authorizeQuery(client, opts));

  const expectErrorPage = (res: Response): void => {
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(res.text).toContain('Nothing was approved');
  };

  const expectErrorRedirect = (res: Response, redirectUri: string, error: string, state: string | null = 'state-123'): void => {
    expect(res.status).toBe(302);
    const location = String(res.headers.location);
    expect(location.startsWith(`${redirectUri}?`)).toBe(true);
    const q = redirectParams(res);
    expect(q.get('error')).toBe(error);
    expect(q.get('error_description')).toEqual(expect.any(String));
    expect(q.get('state')).toBe(state);
    expect(q.get('iss')).toBe(ISSUER);
    expect(q.get('code')).toBeNull();
  };

  it('limits requests per address with OAUTH_AUTHORIZE_RATE_LIMIT, answering a page that says what to do', async () => {
    const limited = await s.start({ OAUTH_AUTHORIZE_RATE_LIMIT: '2' });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 3; i++) {
      last = await http(limited).get('/authorize').query({ client_id: 'nobody' });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([400, 400, 429]);
    expect(last?.headers['content-type']).toMatch(/^text\/html/);
    expect(last?.text).toContain('Wait a minute, then start the connection again');
  });

  describe('errors shown locally, never redirected', () => {
    it('an unknown client gets an HTML 400 page', async () => {
      const res = await http(s.h)
        .get('/authorize')
        .query(authorizeQuery({ client_id: 'no-such-client', redirect_uris: ['https://claude.ai/api/mcp/auth_callback'] } as RegisteredClient));
      expectErrorPage(res);
      expect(res.text).toContain('not registered');
    });

    it('a missing client_id gets an HTML 400 page', async () => {
      const res = await http(s.h).get('/authorize').query({ response_type: 'code', redirect_uri: 'https://claude.ai/api/mcp/auth_callback' });
      expectErrorPage(res);
    });

    it('an unregistered redirect_uri gets an HTML 400 page', async () => {
      const client = await register(s.h, BODIES.claude);
      for (const redirectUri of [
        'https://evil.example.com/api/mcp/auth_callback',
        'https://claude.ai/api/mcp/auth_callback/extra',
        'https://claude.ai/api/mcp/auth_callback?x=1',
        'https://CLAUDE.ai/api/mcp/auth_callback.evil.com',
      ]) {
        expectErrorPage(await authorize(client, { redirectUri }));
      }
    });

    it('protocol errors with a bad redirect_uri still never redirect', async () => {
      const client = await register(s.h, BODIES.claude);
      const res = await authorize(client, { redirectUri: 'https://evil.example.com/cb', query: { response_type: 'token', code_challenge: undefined } });
      expectErrorPage(res);
    });

    it('a repeated client_id gets a page', async () => {
      const client = await register(s.h, BODIES.claude);
      const res = await http(s.h)
        .get(`/authorize?client_id=${client.client_id}&client_id=${client.client_id}&response_type=code`)
        .send();
      expectErrorPage(res);
    });

    it('localhost and 127.0.0.1 are different hosts', async () => {
      const client = await register(s.h, BODIES.claudeCode);
      expectErrorPage(await authorize(client, { redirectUri: 'http://127.0.0.1:54321/callback' }));
      expectErrorPage(await authorize(client, { redirectUri: 'http://localhost:54321/other' }));
    });

    it('a missing redirect_uri is an error page when several are registered', async () => {
      const client = await register(s.h, BODIES.inspector);
      const res = await http(s.h).get('/authorize').query(authorizeQuery(client, { query: { redirect_uri: undefined } }));
      expectErrorPage(res);
    });
  });

  describe('errors redirected back with error, error_description, state and iss', () => {
    it('missing PKCE', async () => {
      const client = await register(s.h, BODIES.claude);
      const res = await authorize(client, { query: { code_challenge: undefined, code_challenge_method: undefined } });
      expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'invalid_request');
    });

    it('a challenge without a method (plain by default)', async () => {
      const client = await register(s.h, BODIES.claude);
      const res = await authorize(client, { query: { code_challenge_method: undefined } });
      expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'invalid_request');
    });

    it('the plain method', async () => {
      const client = await register(s.h, BODIES.claude);
      const verifier = pkce().verifier;
      const res = await authorize(client, { query: { code_challenge: verifier, code_challenge_method: 'plain' } });
      expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'invalid_request');
    });

    it('an unsupported response_type', async () => {
      const client = await register(s.h, BODIES.claude);
      for (const responseType of ['token', 'code id_token']) {
        const res = await authorize(client, { query: { response_type: responseType } });
        expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'unsupported_response_type');
      }
      const missing = await authorize(client, { query: { response_type: undefined } });
      expect(redirectParams(missing).get('error')).toMatch(/^(invalid_request|unsupported_response_type)$/);
      expect(redirectParams(missing).get('iss')).toBe(ISSUER);
    });

    it('an unknown resource is invalid_target', async () => {
      const client = await register(s.h, BODIES.claude);
      for (const resource of ['https://evil.example.com/mcp', 'https://mcp.example.com/other', 'https://mcp.example.com/mcp#x']) {
        const res = await authorize(client, { resource });
        expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'invalid_target');
      }
    });

    it('without state, the error redirect carries iss and no state', async () => {
      const client = await register(s.h, BODIES.claude);
      const res = await authorize(client, { query: { state: undefined, code_challenge: undefined } });
      expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'invalid_request', null);
    });

    it('a repeated parameter is invalid_request', async () => {
      const client = await register(s.h, BODIES.claude);
      const query = new URLSearchParams(authorizeQuery(client));
      query.append('scope', 'read');
      query.append('scope', 'write');
      const res = await http(s.h).get(`/authorize?${query.toString()}`);
      expectErrorRedirect(res, client.redirect_uris[0] ?? '', 'invalid_request');
    });

    it('error redirects keep the registered query of the redirect URI', async () => {
      const client = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://claude.ai/cb?tenant=7'] });
      const res = await authorize(client, { query: { code_challenge: undefined } });
      expect(res.status).toBe(302);
      const q = redirectParams(res);
      expect(q.get('tenant')).toBe('7');
      expect(q.get('error')).toBe('invalid_request');
    });
  });

  describe('no redirect for strangers (RFC 9700 §4.11.2)', () => {
    const linkOf = (html: string): URL => {
      const href = /<a class="button secondary" href="([^"]+)"/.exec(html)?.[1];
      if (!href) throw new Error(`no return link in ${html.slice(0, 400)}`);
      return new URL(href.replace(/&amp;/g, '&').replace(/&#34;/g, '"').replace(/&#39;/g, "'"));
    };

    it.each([
      ['missing PKCE', { code_challenge: undefined }],
      ['unknown resource', { resource: 'https://evil.example/mcp' }],
      ['plain PKCE', { code_challenge_method: 'plain' }],
      ['unsupported response_type', { response_type: 'token' }],
    ])('a fresh client on an unlisted host gets a page with a plain link, never a redirect: %s', async (_name, query) => {
      const client = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://attacker.example/landing?x=1'] });
      const res = await authorize(client, { query });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain('has not been approved on this server before');
      const link = linkOf(res.text);
      expect(`${link.origin}${link.pathname}`).toBe('https://attacker.example/landing');
      expect(link.searchParams.get('x')).toBe('1');
      expect(link.searchParams.get('error')).toEqual(expect.any(String));
      expect(link.searchParams.get('state')).toBe('state-123');
      expect(link.searchParams.get('iss')).toBe(ISSUER);
    });

    it('a bad scope is no error at /authorize (unknown scopes are dropped, RFC 6749 §3.3): a stranger gets the consent page, never a redirect', async () => {
      const client = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://attacker.example/landing'] });
      const res = await authorize(client, { scope: 'nope' });
      expect(res.status).toBe(200);
      expect(res.headers.location).toBeUndefined();
      expect(res.text.match(/<span class="scope">([^<]+)<\/span>/g)).toEqual(['<span class="scope">read</span>']);
    });

    it('OAUTH_TRUSTED_REDIRECT_HOSTS replaces the default hosts: a listed host gets errors back, claude.ai then does not', async () => {
      const h = await s.start({ OAUTH_TRUSTED_REDIRECT_HOSTS: 'app.example.org' });
      const authorizeOn = (client: RegisteredClient): Promise<Response> => http(h).get('/authorize').query(authorizeQuery(client, { query: { code_challenge: undefined } }));
      const listed = await register(h, { ...BODIES.claude, redirect_uris: ['https://app.example.org/cb'] });
      const back = await authorizeOn(listed);
      expect(back.status).toBe(302);
      expect(String(back.headers.location).startsWith('https://app.example.org/cb?')).toBe(true);
      expect(redirectParams(back).get('error')).toBe('invalid_request');

      const claude = await register(h, BODIES.claude);
      const page = await authorizeOn(claude);
      expect(page.status).toBe(400);
      expect(page.headers.location).toBeUndefined();
      expect(page.text).toContain('has not been approved on this server before');
    });

    it('a native app scheme is a stranger too until approved', async () => {
      const client = await register(s.h, { ...BODIES.claude, redirect_uris: ['cursor://anysphere.cursor-retrieval/oauth/callback'] });
      const res = await authorize(client, { query: { code_challenge: undefined } });
      expect(res.status).toBe(400);
      expect(res.headers.location).toBeUndefined();
      expect(linkOf(res.text).protocol).toBe('cursor:');
    });

    it.each(['https://claude.ai/api/mcp/auth_callback', 'https://claude.com/api/mcp/auth_callback', 'https://chatgpt.com/connector_platform_oauth_redirect', 'http://localhost:6274/oauth/callback', 'http://127.0.0.1:33418/callback'])(
      'ChatGPT, Claude and loopback redirect URIs get errors back automatically: %s',
      async (uri) => {
        const client = await register(s.h, { ...BODIES.claude, redirect_uris: [uri] });
        const res = await authorize(client, { query: { code_challenge: undefined } });
        expect(res.status).toBe(302);
        expect(redirectParams(res).get('error')).toBe('invalid_request');
      },
    );

    it('a deny for an unlisted host shows a page with a link; for a listed one it redirects (303)', async () => {
      const stranger = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://attacker.example/cb'] });
      const page = await openConsent(s.h, stranger, { state: 'deny-state' });
      const denied = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, decision: 'deny' });
      expect(denied.status).toBe(200);
      expect(denied.headers.location).toBeUndefined();
      expect(denied.text).toContain('You denied access');
      const link = linkOf(denied.text);
      expect(link.searchParams.get('error')).toBe('access_denied');
      expect(link.searchParams.get('state')).toBe('deny-state');

      const claude = await register(s.h, BODIES.claude);
      const claudePage = await openConsent(s.h, claude);
      const back = await postConsent(s.h, { consent: claudePage.consent, csrf: claudePage.csrf, decision: 'deny' });
      expect(back.status).toBe(303);
      expect(redirectParams(back).get('error')).toBe('access_denied');
    });

    it('once the owner approved a client, its errors go back automatically', async () => {
      const client = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://app.example.org/cb'] });
      expect((await authorize(client, { query: { code_challenge: undefined } })).status).toBe(400);
      const page = await openConsent(s.h, client);
      expect((await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' })).status).toBe(303);
      await s.h.restart();
      const res = await authorize(client, { query: { code_challenge: undefined } });
      expect(res.status).toBe(302);
      expect(redirectParams(res).get('error')).toBe('invalid_request');
      expect((await s.h.services.store.getClient(client.client_id))?.approvedAt).toEqual(expect.any(Number));
    });

    it('an approval always returns the code, with 303 (RFC 9700 §4.12)', async () => {
      const stranger = await register(s.h, { ...BODIES.claude, redirect_uris: ['https://attacker.example/cb'] });
      const page = await openConsent(s.h, stranger);
      const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
      expect(res.status).toBe(303);
      expect(redirectParams(res).get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });
  });

  describe('the consent page', () => {
    it('is served with no-store, anti-framing headers and a CSRF cookie', async () => {
      const client = await register(s.h, BODIES.claude);
      const { res, csrf } = await openConsent(s.h, client);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-frame-options']).toBe('DENY');
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toMatch(/form-action 'self'/);
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const cookie = ([] as string[]).concat(res.headers['set-cookie'] as string[] | string).join(';');
      expect(cookie).toMatch(/HttpOnly/i);
      expect(cookie).toMatch(/SameSite=Lax/i);
      expect(cookie).toMatch(/Secure/i);
    });

    it('shows the client name as self-registered, the redirect host, scopes, resource and the form', async () => {
      const client = await register(s.h, BODIES.claude);
      const { res } = await openConsent(s.h, client, { scope: 'read write', resource: OTHER_RESOURCE });
      const html = res.text;
      expect(html).toContain('claudeai');
      expect(html).toMatch(/chosen by the app itself|not verified/);
      expect(html).toContain('claude.ai');
      expect(html).toContain('https://claude.ai/api/mcp/auth_callback');
      expect(html).toMatch(/<span class="scope">read<\/span>/);
      expect(html).toMatch(/<span class="scope">write<\/span>/);
      expect(html).toContain(OTHER_RESOURCE);
      expect(html).toMatch(/<form method="post" action="\/authorize\/consent"/);
      expect(html).toMatch(/<input[^>]+name="pin"/);
      expect(html).toMatch(/<button[^>]+name="decision" value="approve"/);
      expect(html).toMatch(/<button[^>]+name="decision" value="deny"/);
      expect(html).toMatch(/<input type="hidden" name="consent" value="[^"]+">/);
    });

    it('shows the whole redirect URI of a private-use scheme, as the host to recognise and in the warning', async () => {
      const uri = 'cursor://anysphere.cursor-retrieval/oauth/callback';
      const client = await register(s.h, { ...BODIES.claude, redirect_uris: [uri] });
      const { res } = await openConsent(s.h, client);
      expect(/<strong class="host">([^<]*)<\/strong>/.exec(res.text)?.[1]).toBe(uri);
      expect(/<p class="warn">[^]*?<strong>([^<]*)<\/strong>/.exec(res.text)?.[1]).toBe(uri);
    });

    it('escapes a hostile client name', async () => {
      const client = await register(s.h, { ...BODIES.claude, client_name: '<script>alert(1)</script>"><img src=x>' });
      const { res } = await openConsent(s.h, client);
      expect(res.text).not.toContain('<script>alert(1)</script>');
      expect(res.text).not.toContain('<img src=x>');
      expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    });

    it('drops unknown scopes and falls back to the defaults (Claude sends "claudeai")', async () => {
      const client = await register(s.h, BODIES.claude);
      const claude = await openConsent(s.h, client, { scope: 'claudeai' });
      expect(claude.res.text.match(/<span class="scope">([^<]+)<\/span>/g)).toEqual(['<span class="scope">read</span>']);
      const mixed = await openConsent(s.h, client, { scope: 'claudeai write' });
      expect(mixed.res.text.match(/<span class="scope">([^<]+)<\/span>/g)).toEqual(['<span class="scope">write</span>']);
      const none = await openConsent(s.h, client);
      expect(none.res.text.match(/<span class="scope">([^<]+)<\/span>/g)).toEqual(['<span class="scope">read</span>']);
    });

    it('lets ChatGPT ask at /authorize for scopes it did not register', async () => {
      const client = await register(s.h, BODIES.chatgpt);
      const tokens = await obtainTokens(s.h, client, { scope: 'read write' });
      expect(tokens.scope).toBe('read write');
    });

    it('accepts a loopback redirect with a random port (RFC 8252 §7.3)', async () => {
      const client = await register(s.h, BODIES.claudeCode);
      const port = 49152 + Math.floor(Math.random() * 16000);
      const redirectUri = `http://localhost:${port}/callback`;
      const { res } = await openConsent(s.h, client, { redirectUri });
      expect(res.text).toContain(`localhost:${port}`);
      const tokens = await obtainTokens(s.h, client, { redirectUri });
      expect(tokens.approval.location.startsWith(`${redirectUri}?`)).toBe(true);

      const inspector = await register(s.h, BODIES.inspector);
      const viaIp = await openConsent(s.h, inspector, { redirectUri: 'http://127.0.0.1:6299/oauth/callback' });
      expect(viaIp.res.status).toBe(200);
    });

    it('binds the resource: a trailing slash on a bare origin is the same resource, the configured string is the audience', async () => {
      const client = await register(s.h, BODIES.claude);
      const tokens = await obtainTokens(s.h, client, { resource: `${OTHER_RESOURCE}/` });
      expect((await introspect(s.h, tokens.access_token)).aud).toBe(OTHER_RESOURCE);
      const defaulted = await obtainTokens(s.h, client);
      expect((await introspect(s.h, defaulted.access_token)).aud).toBe(RESOURCE);
    });

    it('a code for one resource cannot be exchanged for another', async () => {
      const client = await register(s.h, BODIES.claude);
      const approval = await approve(s.h, client, { resource: RESOURCE });
      const res = await exchange(s.h, client, approval, { resource: OTHER_RESOURCE });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_target' });
      // The same resource, sent again at /token, is fine.
      const ok = await exchange(s.h, client, approval, { resource: RESOURCE });
      expect(ok.status).toBe(200);
    });

    it('keeps an existing CSRF cookie so several consent pages can be open at once', async () => {
      const client = await register(s.h, BODIES.claude);
      const first = await openConsent(s.h, client);
      const second = await openConsent(s.h, client, {}, first.csrf);
      expect(second.res.headers['set-cookie']).toBeDefined();
      expect(([] as string[]).concat(second.res.headers['set-cookie'] as string[] | string).join(';')).toContain(`__Host-latchkey_csrf=${first.csrf}`);
    });

    it('answers other methods with a page, not a redirect', async () => {
      const res = await http(s.h).put('/authorize');
      expect(res.status).toBe(405);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers.location).toBeUndefined();
    });
  });
});

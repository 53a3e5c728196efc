import type { Response } from 'supertest';
import {
  BODIES,
  CSRF_COOKIE,
  ISSUER,
  PIN,
  exchange,
  http,
  openConsent,
  pkce,
  postConsent,
  redirectParams,
  register,
  startHarness,
  useHarness,
  type Harness,
  type LogCapture,
  type RegisteredClient,
} from '../helpers/http-harness.js';

const expectPage = (res: Response, status: number): void => {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.headers.location).toBeUndefined();
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.text).not.toMatch(/[?&]code=/);
};

/** Tampers with one character of the signed payload, keeping it well-formed base64url. */
function tamper(consent: string): string {
  const [payload = '', mac = ''] = consent.split('.');
  const i = Math.floor(payload.length / 2);
  const flipped = payload[i] === 'A' ? 'B' : 'A';
  return `${payload.slice(0, i)}${flipped}${payload.slice(i + 1)}.${mac}`;
}

describe('POST /authorize/consent', () => {
  const s = useHarness();

  it('the right PIN redirects with code, state and iss', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client, { state: 'xyz-state' });
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(res.status).toBe(303);
    expect(res.headers['cache-control']).toBe('no-store');
    const location = String(res.headers.location);
    expect(location.startsWith('https://claude.ai/api/mcp/auth_callback?')).toBe(true);
    const q = redirectParams(res);
    expect(q.get('code')).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(q.get('state')).toBe('xyz-state');
    expect(q.get('iss')).toBe(ISSUER);
    expect(q.get('error')).toBeNull();
  });

  it('deny redirects with access_denied, state and iss, and needs no PIN', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client, { state: 'deny-state' });
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, decision: 'deny' });
    expect(res.status).toBe(303);
    const q = redirectParams(res);
    expect(q.get('error')).toBe('access_denied');
    expect(q.get('error_description')).toEqual(expect.any(String));
    expect(q.get('state')).toBe('deny-state');
    expect(q.get('iss')).toBe(ISSUER);
    expect(q.get('code')).toBeNull();
  });

  it('a wrong PIN shows the page again with a message and no code', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: '00000000', decision: 'approve' });
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(500);
    expect(res.status).not.toBe(303);
    expect(res.headers.location).toBeUndefined();
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.text).toContain('That PIN is not right');
    expect(res.text).toContain('4 attempts left');
    expect(res.text).toMatch(/<input[^>]+name="pin"/);
    // The same form, with the right PIN, still works.
    const retry = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(retry.status).toBe(303);
    expect(redirectParams(retry).get('code')).toBeTruthy();
  });

  it('an empty PIN is a wrong PIN', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, decision: 'approve' });
    expect(res.headers.location).toBeUndefined();
    expect(res.text).toContain('That PIN is not right');
  });

  it('refuses a post without the CSRF cookie, or with another browser\'s cookie, with a 403 page', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expectPage(await postConsent(s.h, { consent: page.consent, pin: PIN, decision: 'approve' }), 403);

    const other = await openConsent(s.h, client);
    expect(other.csrf).not.toBe(page.csrf);
    const wrong = await postConsent(s.h, { consent: page.consent, csrf: other.csrf, pin: PIN, decision: 'approve' });
    expectPage(wrong, 403);
    expect(wrong.text).toContain('Security check failed');

    const garbage = await postConsent(s.h, { consent: page.consent, csrf: 'x'.repeat(43), pin: PIN, decision: 'approve' });
    expectPage(garbage, 403);
  });

  it('refuses a tampered, truncated or missing consent field with a 400 page', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    for (const consent of [tamper(page.consent), page.consent.slice(0, -2), `${page.consent}.extra`, 'not-signed', '']) {
      expectPage(await postConsent(s.h, { consent, csrf: page.csrf, pin: PIN, decision: 'approve' }), 400);
    }
    expectPage(await postConsent(s.h, { csrf: page.csrf, pin: PIN, decision: 'approve' }), 400);
    // A consent form signed by another daemon (another data dir, another key) is refused too.
    const other = await s.start({});
    const foreignClient = await register(other, BODIES.claude);
    const foreign = await openConsent(other, foreignClient);
    expectPage(await postConsent(s.h, { consent: foreign.consent, csrf: foreign.csrf, pin: PIN, decision: 'approve' }), 400);
  });

  it('refuses a repeated field or an unknown decision with a 400 page', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const repeated = await http(s.h)
      .post('/authorize/consent')
      .set('Cookie', `${CSRF_COOKIE}=${page.csrf}`)
      .type('form')
      .send(`consent=${page.consent}&pin=${PIN}&pin=${PIN}&decision=approve`);
    expectPage(repeated, 400);
    expectPage(await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'maybe' }), 400);
    expectPage(await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN }), 400);
  });

  it('refuses an oversized, overlong or wrongly encoded form with a 4xx page, not a 500', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const post = () => http(s.h).post('/authorize/consent').set('Cookie', `${CSRF_COOKIE}=${page.csrf}`);

    const big = await post().type('form').send(`consent=${page.consent}&pin=${'1'.repeat(20_000)}&decision=approve`);
    expectPage(big, 413);
    const many = await post().type('form').send(Array.from({ length: 30 }, (_, i) => `f${i}=1`).join('&'));
    expectPage(many, 413);
    const charset = await post().set('Content-Type', 'application/x-www-form-urlencoded; charset=utf-7').send('a=b');
    expectPage(charset, 400);
    const json = await post().set('Content-Type', 'application/json').send(JSON.stringify({ consent: page.consent, pin: PIN, decision: 'approve' }));
    expectPage(json, 400);
    // The page still works afterwards.
    expect((await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' })).status).toBe(303);
  });

  it('returns an unusual state byte for byte', async () => {
    const client = await register(s.h, BODIES.claude);
    const state = 'a b&c=d/é?#%20+';
    const page = await openConsent(s.h, client, { state });
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(redirectParams(res).get('state')).toBe(state);
  });

  it('an expired consent page is refused', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    s.h.clock.advance(31 * 60_000);
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expectPage(res, 400);
    expect(res.text).toContain('expired');
  });

  it('a client deleted after the page was shown gets a page, not a redirect', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    await s.h.services.store.deleteClient(client.client_id);
    expectPage(await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' }), 400);
  });

  it('limits PIN attempts per request', async () => {
    const h = await s.start({ OAUTH_PIN_MAX_ATTEMPTS_PER_REQUEST: '3' });
    const client = await register(h, BODIES.claude);
    const page = await openConsent(h, client);
    const attempt = (pin: string): Promise<Response> => postConsent(h, { consent: page.consent, csrf: page.csrf, pin, decision: 'approve' });

    expect((await attempt('11111111')).text).toContain('2 attempts left');
    expect((await attempt('22222222')).text).toContain('1 attempt left');
    const closed = await attempt('33333333');
    expectPage(closed, 403);
    expect(closed.text).toContain('Too many wrong PINs');
    // Even the right PIN no longer opens this request.
    expectPage(await attempt(PIN), 403);

    // A new request (a new consent page) starts with a fresh budget.
    const fresh = await openConsent(h, client, {}, page.csrf);
    const ok = await postConsent(h, { consent: fresh.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(ok.status).toBe(303);
  });

  it('locks out globally after too many failures in an hour from several addresses, with Retry-After', async () => {
    const h = await s.start({ OAUTH_PIN_MAX_FAILURES_PER_HOUR: '3', TRUST_PROXY: 'loopback' });
    const client = await register(h, BODIES.claude);
    let address = 0;
    const wrongOn = async (): Promise<Response> => {
      const page = await openConsent(h, client);
      return http(h)
        .post('/authorize/consent')
        .type('form')
        .set('Cookie', `${CSRF_COOKIE}=${page.csrf}`)
        .set('X-Forwarded-For', `203.0.113.${++address}`)
        .send({ consent: page.consent, pin: '99999999', decision: 'approve' });
    };
    expect((await wrongOn()).text).toContain('That PIN is not right');
    expect((await wrongOn()).text).toContain('That PIN is not right');
    const locked = await wrongOn();
    expectPage(locked, 429);
    expect(locked.text).toMatch(/Try again after \d\d:\d\d UTC/);
    const retryAfter = Number(locked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);

    // The right PIN does not get through the lockout either, from any page.
    const page = await openConsent(h, client);
    const blocked = await postConsent(h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expectPage(blocked, 429);
    // Deny still works while locked: it needs no PIN.
    const denied = await postConsent(h, { consent: page.consent, csrf: page.csrf, decision: 'deny' });
    expect(redirectParams(denied).get('error')).toBe('access_denied');

    // An hour later the lockout is over (a fresh page, since the old one expired).
    h.clock.advance(3_600_001);
    const later = await openConsent(h, client);
    const ok = await postConsent(h, { consent: later.consent, csrf: later.csrf, pin: PIN, decision: 'approve' });
    expect(ok.status).toBe(303);
    expect(redirectParams(ok).get('code')).toBeTruthy();
  });

  it('a consent form is used once: posting it again yields no second code, even at once', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const approve = (): Promise<Response> => postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    const [a, b] = await Promise.all([approve(), approve()]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([303, 409]);
    const again = await approve();
    expectPage(again, 409);
    expect(again.text).toContain('already been used');
    expect(again.headers.location).toBeUndefined();
    // A new page for the same client works as usual.
    const fresh = await openConsent(s.h, client, {}, page.csrf);
    expect((await postConsent(s.h, { consent: fresh.consent, csrf: page.csrf, pin: PIN, decision: 'approve' })).status).toBe(303);
  });

  it("strangers' wrong PINs lock out new browsers, never a browser that entered the PIN before", async () => {
    const h = await s.start({ OAUTH_PIN_MAX_FAILURES_PER_HOUR: '3' });
    const client = await register(h, BODIES.claude);
    const post = (page: { consent: string; csrf: string }, pin: string, device?: string): Promise<Response> =>
      http(h)
        .post('/authorize/consent')
        .type('form')
        .set('Cookie', [`${CSRF_COOKIE}=${page.csrf}`, ...(device ? [`__Host-latchkey_device=${device}`] : [])])
        .send({ consent: page.consent, pin, decision: 'approve' });

    // The owner approves once: the browser is now a known device.
    const first = await post(await openConsent(h, client), PIN);
    expect(first.status).toBe(303);
    const deviceCookie = ([] as string[]).concat(first.headers['set-cookie'] as string[] | string).find((c) => c.startsWith('__Host-latchkey_device='));
    expect(deviceCookie).toMatch(/HttpOnly/);
    expect(deviceCookie).toMatch(/Secure/);
    expect(deviceCookie).toMatch(/SameSite=Lax/);
    const device = /^__Host-latchkey_device=([^;]+)/.exec(deviceCookie ?? '')?.[1] ?? '';

    // A stranger spends the shared budget.
    for (let i = 0; i < 3; i++) await post(await openConsent(h, client), '99999999');
    expectPage(await post(await openConsent(h, client), PIN), 429);
    // A forged device cookie is just a stranger.
    expectPage(await post(await openConsent(h, client), PIN, `${device.slice(0, -2)}xx`), 429);

    // The owner's browser is not affected.
    const owner = await post(await openConsent(h, client), PIN, device);
    expect(owner.status).toBe(303);
    expect(redirectParams(owner).get('code')).toBeTruthy();

    // Devices are known server-side: once forgotten (latchkey forget-devices), the same
    // cookie, signature and all, is a stranger's again.
    expect(await h.services.owner.forgetDevices()).toBe(1);
    expectPage(await post(await openConsent(h, client), PIN, device), 429);
  });

  describe("the consent pages and the owner's page have separate PIN budgets", () => {
    const env = { OAUTH_PIN_MAX_FAILURES_PER_HOUR: '3', TRUST_PROXY: 'loopback' };
    const strangers = ['203.0.113.1', '203.0.113.2', '203.0.113.3'];
    const owner = '198.51.100.7';

    /** Posts a consent form as a new browser (no device cookie) from `ip`. */
    const consentFrom = async (h: Harness, client: RegisteredClient, ip: string, pin: string): Promise<Response> => {
      const page = await openConsent(h, client);
      return http(h)
        .post('/authorize/consent')
        .type('form')
        .set('Cookie', `${CSRF_COOKIE}=${page.csrf}`)
        .set('X-Forwarded-For', ip)
        .send({ consent: page.consent, pin, decision: 'approve' });
    };

    /** Signs in to /admin as a new browser from `ip`, with the form token the server issued. */
    const adminFrom = async (h: Harness, ip: string, pin: string): Promise<Response> => {
      const form = await http(h).get('/admin').set('X-Forwarded-For', ip);
      const loginCookie = ([] as string[]).concat(form.headers['set-cookie'] as string[] | string).find((c) => /^(__Host-)?latchkey_admin_login=/.test(c));
      const csrf = /name="csrf" value="([^"]+)"/.exec(form.text)?.[1];
      expect(loginCookie).toBeDefined();
      expect(csrf).toBeDefined();
      return http(h)
        .post('/admin/login')
        .type('form')
        .set('Cookie', (loginCookie ?? '').split(';')[0] ?? '')
        .set('X-Forwarded-For', ip)
        .send({ csrf, pin });
    };

    it('strangers spending the consent budget leave /admin sign-in accepting the right PIN', async () => {
      const h = await s.start(env);
      const client = await register(h, BODIES.claude);
      for (const ip of strangers) expect((await consentFrom(h, client, ip, '99999999')).status).not.toBe(303);
      // The consent budget is spent: a new browser's right PIN is refused there.
      expectPage(await consentFrom(h, client, owner, PIN), 429);

      const signedIn = await adminFrom(h, owner, PIN);
      expect(signedIn.status).toBe(303);
      expect(signedIn.headers.location).toBe('/admin');
      expect(String(signedIn.headers['set-cookie'])).toMatch(/latchkey_admin=/);
    });

    it('strangers spending the /admin budget leave the consent page accepting the right PIN', async () => {
      const h = await s.start(env);
      const client = await register(h, BODIES.claude);
      for (const ip of strangers) expect((await adminFrom(h, ip, '99999999')).status).not.toBe(303);
      // The owner's page budget is spent: a new browser's right PIN is refused there.
      expect((await adminFrom(h, owner, PIN)).status).toBe(429);

      const approved = await consentFrom(h, client, owner, PIN);
      expect(approved.status).toBe(303);
      expect(redirectParams(approved).get('code')).toBeTruthy();
    });
  });

  it('logs every wrong PIN and lockout with the client and the address seen through TRUST_PROXY', async () => {
    const logs: LogCapture = { lines: [] };
    const h = await startHarness({ OAUTH_PIN_MAX_FAILURES_PER_HOUR: '2', TRUST_PROXY: 'loopback' }, { logs });
    try {
      const client = await register(h, BODIES.claude);
      for (let i = 0; i < 2; i++) {
        const page = await openConsent(h, client);
        await http(h)
          .post('/authorize/consent')
          .type('form')
          .set('Cookie', `${CSRF_COOKIE}=${page.csrf}`)
          .set('X-Forwarded-For', '203.0.113.9')
          .send({ consent: page.consent, pin: '99999999', decision: 'approve' });
      }
      const wrong = logs.lines.find((l) => l.msg === 'wrong PIN');
      const locked = logs.lines.find((l) => l.msg === 'PIN locked out after too many failures');
      expect(wrong).toMatchObject({ clientId: client.client_id, ip: '203.0.113.9', knownDevice: false });
      expect(locked).toMatchObject({ clientId: client.client_id, ip: '203.0.113.9' });
      expect(JSON.stringify(logs.lines)).not.toContain('99999999');
    } finally {
      await h.close();
    }
  });

  it('a consent page open across a restart still works', async () => {
    const client = await register(s.h, BODIES.claude);
    const p = pkce();
    const page = await openConsent(s.h, client, { pkce: p, state: 'across-restart' });
    await s.h.restart();
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(res.status).toBe(303);
    const q = redirectParams(res);
    expect(q.get('state')).toBe('across-restart');
    const code = q.get('code') ?? '';
    await s.h.restart();
    const tokens = await exchange(s.h, client, {
      code,
      state: null,
      iss: null,
      location: '',
      verifier: p.verifier,
      redirectUri: client.redirect_uris[0] ?? '',
    });
    expect(tokens.status).toBe(200);
  });

  it('answers GET /authorize/consent with a page', async () => {
    const res = await http(s.h).get('/authorize/consent');
    expectPage(res, 405);
  });
});

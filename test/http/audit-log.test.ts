import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Response } from 'supertest';
import type { AuditEvent } from '../../src/store/types.js';
import {
  BODIES,
  CSRF_COOKIE,
  exchange,
  http,
  INTROSPECTION_SECRET,
  ISSUER,
  openConsent,
  PIN,
  pkce,
  postAs,
  postConsent,
  redirectParams,
  refresh,
  register,
  startHarness,
  useHarness,
  type Harness,
  type LogCapture,
  type RegisteredClient,
  type TokenBody,
} from '../helpers/http-harness.js';
import { startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { cookieHeader, pressContinue, returnFromProvider, setCookies, SIGN_IN_COOKIE } from '../helpers/sign-in.js';

/**
 * The audit log over HTTP (issue 12, "Audit log"): what the events of real requests say.
 */

const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/**
 * The owner's PIN sign-in form, as a browser: GET /admin, then POST the PIN with the form's
 * cookie (set by hand: the harness's issuer is https, so the cookies are Secure).
 */
async function adminPinLogin(h: Harness, pin: string): Promise<{ res: Response; cookies: Record<string, string> }> {
  const page = await http(h).get('/admin');
  const res = await http(h).post('/admin/login').set('Cookie', cookieHeader(setCookies(page))).type('form').send({ csrf: csrfOf(page.text), pin });
  return { res, cookies: setCookies(res) };
}

async function auditEvents(h: Harness, type: string): Promise<AuditEvent[]> {
  return (await h.services.backend.audit.list({ limit: 1000, type })).reverse();
}

describe('PIN failures and lockouts', () => {
  const s = useHarness({ OAUTH_PIN_MAX_FAILURES_PER_HOUR: '2' });

  it('name the client of the consent page they were typed on, and none on /admin', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expect((await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: '00000001', decision: 'approve' })).text).toContain('That PIN is not right');
    expect((await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: '00000002', decision: 'approve' })).status).toBe(429);

    expect((await adminPinLogin(s.h, '00000003')).res.text).toContain('That PIN is not right');

    const failed = await auditEvents(s.h, 'pin.failed');
    expect(failed.map((e) => [e.detail?.purpose, e.clientId])).toEqual([
      ['consent', client.client_id],
      ['consent', client.client_id],
      ['admin', undefined],
    ]);
    for (const e of failed) expect(e.ip).toMatch(/127\.0\.0\.1/);
    const locked = await auditEvents(s.h, 'pin.locked');
    expect(locked).toHaveLength(1);
    expect(locked[0]).toMatchObject({ clientId: client.client_id, detail: { purpose: 'consent' } });
  });
});

describe('retention (OAUTH_AUDIT_RETENTION)', () => {
  const s = useHarness();
  const DAY = 86_400_000;

  it('keeps events 90 days by default; the daemon\'s cleanup job deletes older ones and keeps the rest', async () => {
    expect(s.h.config.audit.retentionMs).toBe(90 * DAY);
    const old = await register(s.h, BODIES.claude);
    s.h.clock.advance(60 * DAY);
    const recent = await register(s.h, BODIES.chatgpt);
    const registered = async (): Promise<string[]> => (await auditEvents(s.h, 'client.registered')).map((e) => e.clientId ?? '');
    expect(await registered()).toEqual([old.client_id, recent.client_id]);

    // 89 days after the first events: nothing is old enough yet.
    s.h.clock.advance(29 * DAY);
    await s.h.services.cleanup();
    expect(await registered()).toEqual([old.client_id, recent.client_id]);
    expect(await auditEvents(s.h, 'config.loaded')).toHaveLength(1);

    // 91 days: the first day's events (the start-up and the first registration) are gone.
    s.h.clock.advance(2 * DAY);
    await s.h.services.cleanup();
    expect(await registered()).toEqual([recent.client_id]);
    expect(await auditEvents(s.h, 'config.loaded')).toEqual([]);
  });
});

describe('no secret in the audit log or the log, whatever revoked a grant or refused a sign-in', () => {
  const IDP_SECRET = 'audit-grep-oidc-client-secret-0123456789';
  let idp: OidcIdp;
  beforeAll(async () => {
    idp = await startOidcIdp({
      accounts: [
        { id: 'carol', email: 'carol@example.com', email_verified: false, name: 'Carol' },
        { id: 'mallory', email: 'mallory@elsewhere.example', email_verified: true, name: 'Mallory' },
      ],
      clients: [{ clientId: 'latchkey', clientSecret: IDP_SECRET, redirectUris: [`${ISSUER}/login/callback/oidc`] }],
    });
  });
  afterAll(async () => {
    await idp?.stop();
  });

  /** A harness whose consent page offers the test provider and the PIN, with its log captured. */
  const providerHarness = (logs: LogCapture): Promise<Harness> =>
    startHarness(
      {
        OAUTH_OIDC_ISSUER: idp.issuer,
        OAUTH_OIDC_CLIENT_ID: 'latchkey',
        OAUTH_OIDC_CLIENT_SECRET: IDP_SECRET,
        OAUTH_OIDC_NAME: 'Test IdP',
        OAUTH_ALLOWED_DOMAINS: 'example.com',
        OAUTH_LOGIN: 'oidc,pin',
      },
      { logs },
    );

  it('owner revoke, revocation endpoint, code replay, refresh reuse, unverified e-mail, person off the list: each recorded once, none with a secret', async () => {
    const logs: LogCapture = { lines: [] };
    const h = await providerHarness(logs);
    /** Every secret value the test handled: tokens, codes, verifiers, client secrets, the PIN, cookies, signed forms. */
    const secrets = new Set<string>([PIN, INTROSPECTION_SECRET, IDP_SECRET]);
    const keepCookies = (res: Response): Record<string, string> => {
      const cookies = setCookies(res);
      for (const value of Object.values(cookies)) if (value !== '') secrets.add(value);
      return cookies;
    };
    try {
      const client: RegisteredClient = await register(h, BODIES.chatgpt);
      secrets.add(client.client_secret ?? '');

      /** A connection approved with the PIN on the consent page, and its code exchanged. */
      const connect = async (): Promise<{ code: string; verifier: string; tokens: TokenBody }> => {
        const p = pkce();
        const page = await openConsent(h, client, { pkce: p });
        secrets.add(page.csrf).add(page.consent).add(p.verifier);
        const approved = await postConsent(h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
        keepCookies(approved);
        const code = redirectParams(approved).get('code') ?? '';
        secrets.add(code);
        const res = await exchange(h, client, { code, state: null, iss: null, location: '', verifier: p.verifier, redirectUri: client.redirect_uris[0] ?? '' });
        expect(res.status).toBe(200);
        const tokens = res.body as TokenBody;
        secrets.add(tokens.access_token).add(tokens.refresh_token ?? '');
        return { code, verifier: p.verifier, tokens };
      };

      // The owner revokes a grant on /admin, signed in with the PIN.
      await connect();
      const [grant] = await h.services.store.listGrants(h.clock.now(), { clientId: client.client_id });
      const login = await http(h).get('/admin');
      const signedIn = await http(h).post('/admin/login').set('Cookie', cookieHeader(keepCookies(login))).type('form').send({ csrf: csrfOf(login.text), pin: PIN });
      expect(signedIn.status).toBe(303);
      const session = cookieHeader(keepCookies(signedIn));
      const adminCsrf = csrfOf((await http(h).get('/admin').set('Cookie', session)).text);
      secrets.add(adminCsrf);
      const revoked = await http(h).post('/admin/grants/revoke').set('Cookie', session).type('form').send({ csrf: adminCsrf, grant_id: grant?.grantId ?? '', confirm: 'yes' });
      expect(revoked.headers.location).toBe('/admin?done=grant-revoked');

      // The app revokes its refresh token at the revocation endpoint (RFC 7009).
      const second = await connect();
      expect((await postAs(h, '/revoke', client, { token: second.tokens.refresh_token ?? '', token_type_hint: 'refresh_token' })).status).toBe(200);

      // The same code presented twice (RFC 6749 §4.1.2).
      const third = await connect();
      const replay = await exchange(h, client, { code: third.code, state: null, iss: null, location: '', verifier: third.verifier, redirectUri: client.redirect_uris[0] ?? '' });
      expect(replay.status).toBe(400);

      // A rotated refresh token used again after its grace window (RFC 9700 §4.14.2).
      const fourth = await connect();
      const rotated = await refresh(h, client, fourth.tokens.refresh_token ?? '');
      expect(rotated.status).toBe(200);
      secrets.add((rotated.body as TokenBody).access_token).add((rotated.body as TokenBody).refresh_token ?? '');
      h.clock.advance(h.config.tokens.refreshReuseGraceMs + 1000);
      expect((await refresh(h, client, fourth.tokens.refresh_token ?? '')).status).toBe(400);

      // Sign-ins refused: an unverified address on a listed domain, and a person on no list.
      for (const account of ['carol', 'mallory']) {
        const page = await openConsent(h, await register(h, BODIES.claude));
        secrets.add(page.csrf).add(page.consent);
        const started = await pressContinue(h, page);
        secrets.add(started.signIn);
        const back = await idp.signIn(started.location, account);
        secrets.add(back.searchParams.get('code') ?? '').add(back.searchParams.get('state') ?? '');
        const res = await returnFromProvider(h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn });
        expect(res.status).toBe(403);
      }

      const dir = path.join(h.config.store.dataDir, 'audit');
      let text = '';
      for (const f of (await fsp.readdir(dir)).sort()) text += await fsp.readFile(path.join(dir, f), 'utf8');
      const events = text.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
      const reasons = (type: string): unknown[] => events.filter((e) => e.type === type).map((e) => e.detail?.reason);
      expect(reasons('grant.revoked').sort()).toEqual(['code-replay', 'owner', 'refresh-reuse', 'revocation-endpoint']);
      expect(reasons('signin.failed').sort()).toEqual(['not-allowed', 'unverified-email']);
      expect(events.find((e) => e.detail?.reason === 'owner')).toMatchObject({ actor: 'pin', clientId: client.client_id });
      expect(events.find((e) => e.detail?.reason === 'revocation-endpoint')).toMatchObject({ actor: 'client', clientId: client.client_id });

      const output = JSON.stringify(logs.lines);
      expect(logs.lines.length).toBeGreaterThan(20);
      const leaked = [...secrets].filter((v) => v.length >= 8 && (text.includes(v) || output.includes(v)));
      expect(leaked).toEqual([]);
      expect(secrets.size).toBeGreaterThan(30);
    } finally {
      await h.close();
    }
    h.assertNoServerErrors();
  });

  it('a callback without any sign-in cookie is a page and a log line only; a cookie that does not verify is an audit event', async () => {
    const logs: LogCapture = { lines: [] };
    const h = await providerHarness(logs);
    try {
      for (let i = 0; i < 3; i++) {
        const res = await http(h).get(`/login/callback/oidc?code=anything-${i}&state=whatever`);
        expect(res.status).toBe(400);
        expect(res.text).toContain('started in another browser window');
      }
      expect(await auditEvents(h, 'signin.failed')).toEqual([]);
      expect(logs.lines.filter((l) => l.msg === 'sign-in callback without a sign-in cookie')).toHaveLength(3);

      const forged = await http(h).get('/login/callback/oidc?code=anything&state=whatever').set('Cookie', `${SIGN_IN_COOKIE}=not-a-sealed-state`);
      expect(forged.status).toBe(400);
      const [failed] = await auditEvents(h, 'signin.failed');
      expect(failed?.detail).toMatchObject({ provider: 'oidc', reason: 'state-mismatch', why: 'sign-in cookie invalid or expired' });
    } finally {
      await h.close();
    }
    h.assertNoServerErrors();
  });
});

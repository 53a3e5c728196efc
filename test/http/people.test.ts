import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import request, { type Response } from 'supertest';
import { createServices } from '../../src/daemon.js';
import {
  BODIES,
  CSRF_COOKIE,
  ISSUER,
  PIN,
  exchange,
  http,
  introspect,
  obtainTokens,
  openConsent,
  pkce,
  postConsent,
  redirectParams,
  register,
  testConfig,
  useHarness,
  type Harness,
  type TokenBody,
} from '../helpers/http-harness.js';
import { startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { consentFieldOf, cookieHeader, pressContinue, returnFromProvider, setCookies, SIGN_IN_COOKIE } from '../helpers/sign-in.js';

/**
 * People on the owner's page and on their own page (issue 12, "Identity in tokens"): owners
 * sign in to /admin with the provider (the PIN stays), see grants by person and revoke
 * everything of one person; a person who is not an owner sees and revokes only their own
 * connections at /account; the audit log is on /admin, newest first, by person and app.
 */

const SECRET = 'people-test-client-secret-0123456789';
const ADMIN_COOKIE = '__Host-latchkey_admin';
const ACCOUNT_COOKIE = '__Host-latchkey_account';

let idp: OidcIdp;

beforeAll(async () => {
  idp = await startOidcIdp({
    accounts: [
      { id: 'owner', email: 'owner@example.com', email_verified: true, name: 'The Owner' },
      { id: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
      { id: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob' },
      { id: 'mallory', email: 'mallory@elsewhere.example', email_verified: true },
    ],
    clients: [{ clientId: 'latchkey', clientSecret: SECRET, redirectUris: [`${ISSUER}/login/callback/oidc`] }],
  });
});

afterAll(async () => {
  await idp?.stop();
});

const subjectOf = (account: string): string => `oidc:127.0.0.1:${idp.port}:${account}`;

const peopleEnv = (): Record<string, string> => ({
  OAUTH_OIDC_ISSUER: idp.issuer,
  OAUTH_OIDC_CLIENT_ID: 'latchkey',
  OAUTH_OIDC_CLIENT_SECRET: SECRET,
  OAUTH_OIDC_NAME: 'Test IdP',
  OAUTH_ALLOWED_EMAILS: 'alice@example.com,bob@example.com',
  OAUTH_OWNER_EMAILS: 'owner@example.com',
  OAUTH_LOGIN: 'oidc,pin',
});

function usePeopleHarness(): { readonly h: Harness } {
  const inner = useHarness();
  let current: Harness | undefined;
  beforeEach(async () => {
    current = await inner.start(peopleEnv());
  });
  return {
    get h(): Harness {
      if (current === undefined) throw new Error('no harness outside a test');
      return current;
    },
  };
}

const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

/** A person approves a connection of a fresh client after signing in; returns its tokens. */
async function connectAs(h: Harness, account: string, body: object = BODIES.claude): Promise<TokenBody> {
  const client = await register(h, body);
  const p = pkce();
  const page = await openConsent(h, client, { pkce: p });
  const started = await pressContinue(h, page);
  const back = await idp.signIn(started.location, account);
  const named = await returnFromProvider(h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn });
  expect(named.status).toBe(200);
  const approved = await postConsent(h, { consent: consentFieldOf(named.text), csrf: page.csrf, decision: 'approve' });
  const code = redirectParams(approved).get('code') ?? '';
  const res = await exchange(h, client, { code, state: null, iss: null, location: '', verifier: p.verifier, redirectUri: client.redirect_uris[0] ?? '' });
  expect(res.status).toBe(200);
  return res.body as TokenBody;
}

/**
 * Signs in to a page (/admin or /account) with the provider, as a browser would: the page's
 * form, the provider, the callback. Returns the callback's answer and the cookies it set.
 */
async function signInTo(h: Harness, page: '/admin' | '/account', account: string): Promise<{ res: Response; cookies: Record<string, string> }> {
  const login = await http(h).get(page);
  const formCookie = Object.entries(setCookies(login)).find(([name]) => name.endsWith('_login'));
  if (formCookie === undefined) throw new Error(`no sign-in form at ${page}: ${login.status} ${login.text.slice(0, 200)}`);
  const start = await http(h).post(`${page}/login/oidc`).set('Cookie', `${formCookie[0]}=${formCookie[1]}`).type('form').send({ csrf: csrfOf(login.text) });
  expect(start.status).toBe(303);
  const back = await idp.signIn(String(start.headers.location), account);
  const res = await returnFromProvider(h, back, { [SIGN_IN_COOKIE]: setCookies(start)[SIGN_IN_COOKIE] });
  return { res, cookies: setCookies(res) };
}

describe('the owner signs in to /admin with the provider', () => {
  const s = usePeopleHarness();

  it('the sign-in page offers the provider beside the PIN, and its CSP allows the provider', async () => {
    const page = await http(s.h).get('/admin');
    expect(page.text).toContain('Sign in with Test IdP');
    expect(page.text).toContain('action="/admin/login/oidc"');
    expect(page.text).toMatch(/name="pin"/);
    expect(String(page.headers['content-security-policy'])).toContain(`form-action 'self' ${idp.issuer}`);
  });

  it('an owner gets an owner session, moved on by a page of ours (Strict cookies are not sent after a cross-site redirect)', async () => {
    const { res, cookies } = await signInTo(s.h, '/admin', 'owner');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<meta http-equiv="refresh" content="0;url=/admin">');
    expect(res.text).toContain('Signed in as owner@example.com.');
    const session = cookies[ADMIN_COOKIE];
    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(String(res.headers['set-cookie'])).toMatch(/__Host-latchkey_admin=[^;]+; Path=\/; HttpOnly; Secure; SameSite=Strict/);
    const admin = await http(s.h).get('/admin').set('Cookie', `${ADMIN_COOKIE}=${session}`);
    expect(admin.text).toContain('Connected apps');
    expect(admin.text).toContain('Signed in as owner@example.com');
    const [event] = await s.h.services.backend.audit.list({ limit: 10, type: 'signin.succeeded' });
    expect(event).toMatchObject({ subject: subjectOf('owner'), detail: { purpose: 'admin', provider: 'oidc' } });
  });

  it('someone allowed to connect but not an owner is sent to their own page instead', async () => {
    const { res, cookies } = await signInTo(s.h, '/admin', 'alice');
    expect(res.text).toContain('<meta http-equiv="refresh" content="0;url=/account">');
    expect(cookies[ADMIN_COOKIE]).toBeUndefined();
    const account = await http(s.h).get('/account').set('Cookie', `${ACCOUNT_COOKIE}=${cookies[ACCOUNT_COOKIE] ?? ''}`);
    expect(account.text).toContain('Signed in as <strong>alice@example.com</strong>');
    // The account session opens nothing on /admin.
    expect((await http(s.h).get('/admin').set('Cookie', `${ADMIN_COOKIE}=${cookies[ACCOUNT_COOKIE] ?? ''}`)).text).toContain('Sign in');
  });

  it('someone off the list gets a page, and no session', async () => {
    const { res, cookies } = await signInTo(s.h, '/admin', 'mallory');
    expect(res.status).toBe(403);
    expect(res.text).toContain('is not on the list of people allowed to connect');
    expect(cookies[ADMIN_COOKIE]).toBeUndefined();
    expect(cookies[ACCOUNT_COOKIE]).toBeUndefined();
  });

  it('a provider button posted without the sign-in form\'s cookie is refused', async () => {
    const login = await http(s.h).get('/admin');
    const res = await http(s.h).post('/admin/login/oidc').type('form').send({ csrf: csrfOf(login.text) });
    expect(res.status).toBe(403);
    expect(res.headers.location).toBeUndefined();
  });
});

describe('people on /admin', () => {
  const s = usePeopleHarness();

  async function ownerSession(): Promise<string> {
    const { cookies } = await signInTo(s.h, '/admin', 'owner');
    return cookies[ADMIN_COOKIE] ?? '';
  }

  it('lists grants by person, and revokes everything of one person after a confirmation', async () => {
    const aliceClaude = await connectAs(s.h, 'alice', BODIES.claude);
    const aliceChatgpt = await connectAs(s.h, 'alice', BODIES.chatgpt);
    const bob = await connectAs(s.h, 'bob');
    const pinClient = await register(s.h, BODIES.claudeCode);
    const byPin = await obtainTokens(s.h, pinClient);
    const session = await ownerSession();
    const cookie = `${ADMIN_COOKIE}=${session}`;

    const admin = await http(s.h).get('/admin').set('Cookie', cookie);
    expect(admin.text).toContain('<h2 id="people">People</h2>');
    expect(admin.text).toContain('aria-label="alice@example.com"');
    expect(admin.text).toContain('aria-label="bob@example.com"');
    expect(admin.text).toContain('Revoke everything of alice@example.com');
    expect(admin.text).toContain('<dt>Approved by</dt><dd>the PIN</dd>');
    const csrf = csrfOf(admin.text);

    const confirm = await http(s.h).post('/admin/people/revoke').set('Cookie', cookie).type('form').send({ csrf, subject: subjectOf('alice') });
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('Revoke everything of this person?');
    expect(confirm.text).toContain('All 2 live grants');
    expect(await introspect(s.h, aliceClaude.access_token)).toMatchObject({ active: true });

    const done = await http(s.h).post('/admin/people/revoke').set('Cookie', cookie).type('form').send({ csrf, subject: subjectOf('alice'), confirm: 'yes' });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/admin?done=person-revoked');
    for (const t of [aliceClaude, aliceChatgpt]) expect(await introspect(s.h, t.access_token)).toEqual({ active: false });
    expect(await introspect(s.h, bob.access_token)).toMatchObject({ active: true, username: 'bob@example.com' });
    expect(await introspect(s.h, byPin.access_token)).toMatchObject({ active: true });

    const [revoked] = await s.h.services.backend.audit.list({ limit: 10, type: 'grant.revoked' });
    expect(revoked).toMatchObject({ actor: subjectOf('owner'), subject: subjectOf('alice'), detail: { reason: 'owner', email: 'alice@example.com' } });
  });

  it('refuses a revocation without the session\'s CSRF token, and changes nothing', async () => {
    const alice = await connectAs(s.h, 'alice');
    const cookie = `${ADMIN_COOKIE}=${await ownerSession()}`;
    const res = await http(s.h).post('/admin/people/revoke').set('Cookie', cookie).type('form').send({ csrf: 'forged', subject: subjectOf('alice'), confirm: 'yes' });
    expect(res.status).toBe(403);
    expect(await introspect(s.h, alice.access_token)).toMatchObject({ active: true });
  });

  it('shows the audit log newest first, filtered by person or app, in pages', async () => {
    await connectAs(s.h, 'alice');
    await connectAs(s.h, 'bob');
    const cookie = `${ADMIN_COOKIE}=${await ownerSession()}`;
    const log = await http(s.h).get('/admin/audit').set('Cookie', cookie);
    expect(log.status).toBe(200);
    expect(log.headers['cache-control']).toBe('no-store');
    const types = [...log.text.matchAll(/<td class="mono">([a-z.]+)<\/td>/g)].map((m) => m[1]);
    expect(types[0]).toBe('signin.succeeded');
    expect(types).toEqual(expect.arrayContaining(['config.loaded', 'client.registered', 'consent.approved']));
    expect(types[types.length - 1]).toBe('config.loaded');

    const alices = await http(s.h).get('/admin/audit').query({ subject: subjectOf('alice') }).set('Cookie', cookie);
    const aliceTypes = [...alices.text.matchAll(/<td class="mono">([a-z.]+)<\/td>/g)].map((m) => m[1]);
    expect(aliceTypes).toEqual(['consent.approved', 'signin.succeeded']);
    expect(alices.text).toContain('alice@example.com approved');
    expect(alices.text).not.toContain('bob@example.com');

    const clientId = (await s.h.services.store.listClients())[0]?.clientId ?? '';
    const byApp = await http(s.h).get('/admin/audit').query({ client: clientId }).set('Cookie', cookie);
    expect([...byApp.text.matchAll(/<td class="mono">([a-z.]+)<\/td>/g)].map((m) => m[1])).toEqual(['consent.approved', 'signin.succeeded', 'client.registered']);

    for (let i = 0; i < 60; i++) await s.h.services.backend.audit.append({ at: s.h.clock.now() + 1000 + i, type: 'pin.failed', actor: 'anyone', ip: `198.51.100.${i}` });
    const first = await http(s.h).get('/admin/audit').set('Cookie', cookie);
    expect(first.text).toContain('198.51.100.59');
    expect(first.text).toContain('href="/admin/audit?page=2"');
    const second = await http(s.h).get('/admin/audit?page=2').set('Cookie', cookie);
    expect(second.text).toContain('198.51.100.9<');
    expect(second.text).not.toContain('198.51.100.10<');
    expect(second.text).toContain('href="/admin/audit?page=1"');
  });

  it('the audit page needs a session', async () => {
    const res = await http(s.h).get('/admin/audit');
    expect(res.status).toBe(401);
    expect(res.text).toContain('Sign in');
  });

  it('the PIN still opens /admin (break-glass), and its actions are recorded as the PIN\'s', async () => {
    const alice = await connectAs(s.h, 'alice');
    const page = await http(s.h).get('/admin');
    const signedIn = await http(s.h).post('/admin/login').set('Cookie', cookieHeader(setCookies(page))).type('form').send({ csrf: csrfOf(page.text), pin: PIN });
    expect(signedIn.status).toBe(303);
    const cookie = `${ADMIN_COOKIE}=${setCookies(signedIn)[ADMIN_COOKIE] ?? ''}`;
    const admin = await http(s.h).get('/admin').set('Cookie', cookie);
    expect(admin.text).toContain('Signed in with the PIN');
    await http(s.h).post('/admin/people/revoke').set('Cookie', cookie).type('form').send({ csrf: csrfOf(admin.text), subject: subjectOf('alice'), confirm: 'yes' });
    expect(await introspect(s.h, alice.access_token)).toEqual({ active: false });
    expect((await s.h.services.backend.audit.list({ limit: 10, type: 'grant.revoked' }))[0]).toMatchObject({ actor: 'pin' });
  });
});

describe('a person\'s own page: /account', () => {
  const s = usePeopleHarness();

  it('lists only their connections, revokes one after a confirmation, and never someone else\'s', async () => {
    const first = await connectAs(s.h, 'alice', BODIES.claude);
    const second = await connectAs(s.h, 'alice', BODIES.chatgpt);
    const bob = await connectAs(s.h, 'bob');
    const { cookies } = await signInTo(s.h, '/account', 'alice');
    const cookie = `${ACCOUNT_COOKIE}=${cookies[ACCOUNT_COOKIE] ?? ''}`;
    const page = await http(s.h).get('/account').set('Cookie', cookie);
    expect(page.status).toBe(200);
    expect(page.headers['cache-control']).toBe('no-store');
    expect([...page.text.matchAll(/<li class="grant" aria-label="([^"]+)"/g)].map((m) => m[1]).sort()).toEqual(['ChatGPT', 'claudeai']);
    const csrf = csrfOf(page.text);
    const grantIds = [...page.text.matchAll(/name="grant_id" value="([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(grantIds).toHaveLength(2);

    // Bob's grant id, posted from Alice's page, touches nothing.
    const bobGrant = (await s.h.services.store.listGrants(s.h.clock.now(), { subject: subjectOf('bob') }))[0]?.grantId ?? '';
    const foreign = await http(s.h).post('/account/grants/revoke').set('Cookie', cookie).type('form').send({ csrf, grant_id: bobGrant, confirm: 'yes' });
    expect(foreign.headers.location).toBe('/account?done=already-gone');
    expect(await introspect(s.h, bob.access_token)).toMatchObject({ active: true });

    const confirm = await http(s.h).post('/account/grants/revoke').set('Cookie', cookie).type('form').send({ csrf, grant_id: grantIds[0] });
    expect(confirm.text).toContain('Revoke this connection?');
    const done = await http(s.h).post('/account/grants/revoke').set('Cookie', cookie).type('form').send({ csrf, grant_id: grantIds[0], confirm: 'yes' });
    expect(done.headers.location).toBe('/account?done=revoked');
    const live = await Promise.all([first, second].map(async (t) => (await introspect(s.h, t.access_token)).active));
    expect(live.sort()).toEqual([false, true]);
    expect((await s.h.services.backend.audit.list({ limit: 10, type: 'grant.revoked' }))[0]).toMatchObject({ actor: subjectOf('alice'), detail: { reason: 'person' } });

    const all = await http(s.h).post('/account/revoke-all').set('Cookie', cookie).type('form').send({ csrf, confirm: 'yes' });
    expect(all.headers.location).toBe('/account?done=all-revoked');
    for (const t of [first, second]) expect(await introspect(s.h, t.access_token)).toEqual({ active: false });
    expect(await introspect(s.h, bob.access_token)).toMatchObject({ active: true });
  });

  it('refuses a form without the session\'s CSRF token, and asks to sign in without a session', async () => {
    const alice = await connectAs(s.h, 'alice');
    const { cookies } = await signInTo(s.h, '/account', 'alice');
    const cookie = `${ACCOUNT_COOKIE}=${cookies[ACCOUNT_COOKIE] ?? ''}`;
    expect((await http(s.h).post('/account/revoke-all').set('Cookie', cookie).type('form').send({ csrf: 'forged', confirm: 'yes' })).status).toBe(403);
    expect(await introspect(s.h, alice.access_token)).toMatchObject({ active: true });
    const anonymous = await http(s.h).get('/account');
    expect(anonymous.text).toContain('Sign in with Test IdP');
    expect((await http(s.h).post('/account/revoke-all').type('form').send({ csrf: 'x', confirm: 'yes' })).status).toBe(401);
  });

  it('signs out', async () => {
    const { cookies } = await signInTo(s.h, '/account', 'alice');
    const cookie = `${ACCOUNT_COOKIE}=${cookies[ACCOUNT_COOKIE] ?? ''}`;
    const page = await http(s.h).get('/account').set('Cookie', cookie);
    const out = await http(s.h).post('/account/logout').set('Cookie', cookie).type('form').send({ csrf: csrfOf(page.text) });
    expect(out.status).toBe(303);
    expect((await http(s.h).get('/account').set('Cookie', cookie)).text).toContain('Sign in with Test IdP');
  });
});

describe('without a provider', () => {
  const s = useHarness();

  it('/account says it is not available, and /admin offers only the PIN', async () => {
    const res = await http(s.h).get('/account');
    expect(res.status).toBe(404);
    expect(res.text).toContain('approves connections with a PIN');
    const admin = await http(s.h).get('/admin');
    expect(admin.text).not.toContain('Sign in with');
    expect((await http(s.h).post('/admin/login/oidc').set('Cookie', cookieHeader({})).type('form').send({ csrf: 'x' })).status).toBe(403);
  });
});

describe('an owner taken off OAUTH_OWNER_EMAILS', () => {
  const s = usePeopleHarness();

  it('loses the owner\'s page at once, even with a live session', async () => {
    const { cookies } = await signInTo(s.h, '/admin', 'owner');
    const cookie = `${ADMIN_COOKIE}=${cookies[ADMIN_COOKIE] ?? ''}`;
    expect((await http(s.h).get('/admin').set('Cookie', cookie)).text).toContain('Connected apps');
    // The same data directory, restarted with another owner.
    await s.h.services.backend.close();
    const config = testConfig(s.h.dir, { ...peopleEnv(), OAUTH_OWNER_EMAILS: 'someone-else@example.com' });
    const again = await createServices(config, pino({ level: 'silent' }), { clock: s.h.clock });
    try {
      const page = await request(again.app).get('/admin').set('Cookie', cookie);
      expect(page.status).toBe(200);
      expect(page.text).toContain('Sign in');
      expect(page.text).not.toContain('Connected apps');
      expect(await again.backend.kv.list('admin-session', s.h.clock.now())).toEqual([]);
    } finally {
      await again.backend.close();
    }
  });
});

import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import type { AuditEvent } from '../../src/store/types.js';
import {
  BODIES,
  CSRF_COOKIE,
  ISSUER,
  PIN,
  exchange,
  http,
  introspect,
  openConsent,
  pkce,
  postConsent,
  redirectParams,
  refresh,
  register,
  startHarness,
  useHarness,
  type Harness,
  type RegisteredClient,
  type TokenBody,
} from '../helpers/http-harness.js';
import { startGithubStandin, type GithubStandin } from '../helpers/github-standin.js';
import { startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { freePort } from '../helpers/running-app.js';
import { consentFieldOf, pressContinue, returnFromProvider, setCookies, SIGN_IN_COOKIE } from '../helpers/sign-in.js';

/**
 * Sign-in by an identity provider in the real consent flow (issue 12, "The flow"), over
 * HTTP: the consent page's button, the provider (panva's oidc-provider, signed into by
 * fetch), the callback, the consent page naming the person, the code, and the person in
 * the tokens. Every refusal is a page and nothing else: no redirect to the client.
 */

const SECRET = 'sign-in-test-client-secret-0123456789';
const CALLBACK = `${ISSUER}/login/callback/oidc`;

let idp: OidcIdp;

beforeAll(async () => {
  idp = await startOidcIdp({
    accounts: [
      { id: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
      { id: 'mallory', email: 'mallory@elsewhere.example', email_verified: true, name: 'Mallory' },
      { id: 'carol', email: 'carol@example.com', email_verified: false, name: 'Carol' },
    ],
    clients: [{ clientId: 'latchkey', clientSecret: SECRET, redirectUris: [CALLBACK] }],
  });
});

afterAll(async () => {
  await idp?.stop();
});

const oidcEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
  OAUTH_OIDC_ISSUER: idp.issuer,
  OAUTH_OIDC_CLIENT_ID: 'latchkey',
  OAUTH_OIDC_CLIENT_SECRET: SECRET,
  OAUTH_OIDC_NAME: 'Test IdP',
  OAUTH_ALLOWED_EMAILS: 'alice@example.com',
  OAUTH_ALLOWED_DOMAINS: 'example.com',
  ...extra,
});

/**
 * A fresh harness per test whose environment names the provider, which only exists once
 * beforeAll has run: useHarness's scope, with the environment read lazily.
 */
function useProviderHarness(extra: Record<string, string> = {}): { readonly h: Harness } {
  const inner = useHarness();
  let current: Harness | undefined;
  beforeEach(async () => {
    current = await inner.start(oidcEnv(extra));
  });
  return {
    get h(): Harness {
      if (current === undefined) throw new Error('no harness outside a test');
      return current;
    },
  };
}

/** A page and nothing else: HTML, no redirect, no code anywhere, never cached. */
function expectPage(res: Response, status: number, text?: string): void {
  expect({ status: res.status, location: res.headers.location }).toEqual({ status, location: undefined });
  expect(res.headers['content-type']).toMatch(/^text\/html/);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.text).not.toMatch(/[?&]code=/);
  if (text !== undefined) expect(res.text).toContain(text);
}

async function auditEvents(h: Harness, type?: string): Promise<AuditEvent[]> {
  return h.services.backend.audit.list({ limit: 1000, ...(type !== undefined ? { type } : {}) });
}

interface SignedInPage {
  res: Response;
  csrf: string;
  /** The consent form signed for the person. */
  consent: string;
}

/** Consent page → Continue → provider sign-in as `account` → back at the callback. */
async function signInThroughConsent(h: Harness, account: string, between?: () => Promise<void>): Promise<SignedInPage & { back: URL; signIn: string }> {
  const client = await register(h, BODIES.claude);
  const page = await openConsent(h, client, { state: 'state-of-the-app' });
  const started = await pressContinue(h, page);
  await between?.();
  const back = await idp.signIn(started.location, account);
  await between?.();
  const res = await returnFromProvider(h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn });
  return { res, csrf: page.csrf, consent: res.status === 200 ? consentFieldOf(res.text) : '', back, signIn: started.signIn };
}

describe('the consent page with a provider', () => {
  const s = useProviderHarness();

  it('offers "Continue with" the provider, with Deny, and no PIN when OAUTH_LOGIN has no pin', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expect(page.res.text).toContain('Continue with Test IdP');
    expect(page.res.text).toContain('action="/login/start/oidc"');
    expect(page.res.text).not.toMatch(/name="pin"/);
    expect(page.res.text).toMatch(/name="decision" value="deny"/);
    // The button's form leads to the provider: CSP form-action must allow it (Chrome checks redirects).
    expect(String(page.res.headers['content-security-policy'])).toContain(`form-action 'self' https://claude.ai ${idp.issuer}`);
  });

  it('refuses an approval by PIN when the PIN is not offered', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expectPage(res, 403, 'Sign in to approve');
    expect(await auditEvents(s.h, 'consent.approved')).toEqual([]);
  });

  it('signs the person in, names them, and issues a code whose tokens carry them; introspection shows the person', async () => {
    const { res, csrf, consent, back } = await signInThroughConsent(s.h, 'alice');
    expect(back.origin + back.pathname).toBe(CALLBACK);
    expectPage(res, 200);
    expect(res.text).toMatch(/Allow <strong>claudeai<\/strong> to use <strong>mcp\.example\.com\/mcp<\/strong> as <strong>alice@example\.com<\/strong>\?/);
    expect(res.text).not.toMatch(/name="pin"/);
    // The sign-in cookie is single-use: the callback clears it.
    expect(setCookies(res)[SIGN_IN_COOKIE]).toBe('');

    const approved = await postConsent(s.h, { consent, csrf, decision: 'approve' });
    expect(approved.status).toBe(303);
    const q = redirectParams(approved);
    expect({ state: q.get('state'), iss: q.get('iss') }).toEqual({ state: 'state-of-the-app', iss: ISSUER });
    expect(q.get('code')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The form is used once, whoever posts it again.
    expectPage(await postConsent(s.h, { consent, csrf, decision: 'approve' }), 409);
  });
});

describe('the whole chain with the verifier, and across restarts', () => {
  const s = useProviderHarness();

  async function chain(between?: () => Promise<void>): Promise<{ tokens: TokenBody; subject: string; client: RegisteredClient }> {
    const client = await register(s.h, BODIES.claude);
    const p = pkce();
    const page = await openConsent(s.h, client, { pkce: p });
    await between?.();
    const started = await pressContinue(s.h, page);
    await between?.();
    const back = await idp.signIn(started.location, 'alice');
    await between?.();
    const res = await returnFromProvider(s.h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn });
    expectPage(res, 200, 'alice@example.com');
    await between?.();
    const approved = await postConsent(s.h, { consent: consentFieldOf(res.text), csrf: page.csrf, decision: 'approve' });
    expect(approved.status).toBe(303);
    await between?.();
    const code = redirectParams(approved).get('code') ?? '';
    const exchanged = await exchange(s.h, client, { code, state: null, iss: null, location: '', verifier: p.verifier, redirectUri: client.redirect_uris[0] ?? '' });
    expect(exchanged.status).toBe(200);
    await between?.();
    return { tokens: exchanged.body as TokenBody, subject: `oidc:127.0.0.1:${idp.port}:alice`, client };
  }

  it('code → token → introspection names the person (sub and username); refresh keeps them', async () => {
    const { tokens, subject, client } = await chain();
    expect(await introspect(s.h, tokens.access_token)).toMatchObject({ active: true, sub: subject, username: 'alice@example.com' });
    const refreshed = await refresh(s.h, client, tokens.refresh_token ?? '');
    expect(refreshed.status).toBe(200);
    expect(await introspect(s.h, (refreshed.body as TokenBody).access_token)).toMatchObject({ active: true, sub: subject, username: 'alice@example.com' });
    const grants = await s.h.services.store.listGrants(s.h.clock.now(), { subject });
    expect(grants).toHaveLength(1);
    expect(grants[0]?.approvedBy).toMatchObject({ subject, email: 'alice@example.com', name: 'Alice Example', provider: 'oidc', emailVerified: true });

    const types = (await auditEvents(s.h)).map((e) => e.type);
    expect(types.filter((t) => t === 'signin.succeeded')).toHaveLength(1);
    expect(types.filter((t) => t === 'consent.approved')).toHaveLength(1);
    const [approvedEvent] = await auditEvents(s.h, 'consent.approved');
    expect(approvedEvent).toMatchObject({ actor: subject, subject, clientName: 'claudeai', detail: { scopes: ['read'], resource: 'https://mcp.example.com/mcp', email: 'alice@example.com' } });
  });

  it('survives a restart between every step', async () => {
    const { tokens, subject } = await chain(() => s.h.restart());
    expect(await introspect(s.h, tokens.access_token)).toMatchObject({ active: true, sub: subject, username: 'alice@example.com' });
  });
});

describe('every refusal is a page, and nothing else', () => {
  const s = useProviderHarness();

  it('a replayed callback: the first works, the same callback again gets a page', async () => {
    const first = await signInThroughConsent(s.h, 'alice');
    expect(first.res.status).toBe(200);
    const again = await returnFromProvider(s.h, first.back, { [CSRF_COOKIE]: first.csrf, [SIGN_IN_COOKIE]: first.signIn });
    expectPage(again, 400, 'already used');
    const failed = await auditEvents(s.h, 'signin.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.detail).toMatchObject({ provider: 'oidc', purpose: 'consent', reason: 'state-mismatch' });
  });

  it('a callback in a browser that did not start the sign-in (no sign-in cookie)', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const started = await pressContinue(s.h, page);
    const back = await idp.signIn(started.location, 'alice');
    expectPage(await returnFromProvider(s.h, back, { [CSRF_COOKIE]: page.csrf }), 400, 'started in another browser window');
  });

  it('a state that is not this browser\'s', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const started = await pressContinue(s.h, page);
    const back = await idp.signIn(started.location, 'alice');
    back.searchParams.set('state', 'forged-state-value');
    expectPage(await returnFromProvider(s.h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn }), 400, 'already used, or was started in another browser window');
  });

  it('a person off the list', async () => {
    const { res } = await signInThroughConsent(s.h, 'mallory');
    expectPage(res, 403, 'mallory@elsewhere.example is not on the list of people allowed to connect');
    expect(res.text).not.toContain('name="consent"');
    const [failed] = await auditEvents(s.h, 'signin.failed');
    expect(failed).toMatchObject({ subject: `oidc:127.0.0.1:${idp.port}:mallory`, detail: { reason: 'not-allowed', email: 'mallory@elsewhere.example' } });
  });

  it('an unverified e-mail', async () => {
    const { res } = await signInThroughConsent(s.h, 'carol');
    expectPage(res, 403, 'has not verified the address carol@example.com');
    expect((await auditEvents(s.h, 'signin.failed'))[0]?.detail).toMatchObject({ reason: 'unverified-email' });
  });

  it('an ID token with the wrong nonce, or signed by another key', async () => {
    idp.tamperIdTokens({ claims: (c) => ({ ...c, nonce: 'not-the-nonce-latchkey-sent' }) });
    try {
      expectPage((await signInThroughConsent(s.h, 'alice')).res, 400, 'sent an identity Latchkey could not verify');
      idp.tamperIdTokens({ key: 'foreign' });
      expectPage((await signInThroughConsent(s.h, 'alice')).res, 400, 'sent an identity Latchkey could not verify');
    } finally {
      idp.tamperIdTokens(undefined);
    }
    const reasons = (await auditEvents(s.h, 'signin.failed')).map((e) => e.detail?.reason);
    expect(reasons).toEqual(['invalid-id-token', 'invalid-id-token']);
  });

  it('the person cancels at the provider', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    const started = await pressContinue(s.h, page);
    const back = await idp.signIn(started.location, 'alice', 'deny');
    expectPage(await returnFromProvider(s.h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn }), 403, 'was cancelled');
  });

  it('a sign-in form posted without the CSRF cookie, for an unknown provider, or by GET', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expectPage(await http(s.h).post('/login/start/oidc').type('form').send({ consent: page.consent }), 403, 'Security check failed');
    expectPage(await http(s.h).post('/login/start/oidc').set('Cookie', `${CSRF_COOKIE}=${page.csrf}`).type('form').send({ consent: `${page.consent}x` }), 400);
    expectPage(await http(s.h).post('/login/start/github').set('Cookie', `${CSRF_COOKIE}=${page.csrf}`).type('form').send({ consent: page.consent }), 404, 'does not offer');
    expectPage(await http(s.h).get('/login/start/oidc'), 405);
    expectPage(await http(s.h).get('/login/callback/github?code=x&state=y'), 404);
  });

  it('the person\'s form, posted by another browser, is refused', async () => {
    const { consent } = await signInThroughConsent(s.h, 'alice');
    expectPage(await postConsent(s.h, { consent, csrf: 'A'.repeat(43), decision: 'approve' }), 403, 'Security check failed');
  });

  it('Deny after signing in goes back with access_denied and records who denied', async () => {
    const { consent, csrf } = await signInThroughConsent(s.h, 'alice');
    const res = await postConsent(s.h, { consent, csrf, decision: 'deny' });
    expect(res.status).toBe(303);
    expect(redirectParams(res).get('error')).toBe('access_denied');
    expect((await auditEvents(s.h, 'consent.denied'))[0]).toMatchObject({ actor: `oidc:127.0.0.1:${idp.port}:alice` });
  });
});

describe('a provider that cannot be reached', () => {
  it('Latchkey starts anyway, the button answers with a page, and sign-in works once the provider is back', async () => {
    const port = await freePort();
    // Not useHarness: its check that nothing answered 5xx would refuse this 503, which is the point.
    const h = await startHarness({ ...oidcEnv(), OAUTH_OIDC_ISSUER: `http://127.0.0.1:${port}` });
    let back: OidcIdp | undefined;
    try {
      const client = await register(h, BODIES.claude);
      const page = await openConsent(h, client);
      const press = (): Promise<Response> => http(h).post('/login/start/oidc').set('Cookie', `${CSRF_COOKIE}=${page.csrf}`).type('form').send({ consent: page.consent });
      const res = await press();
      expectPage(res, 503, 'Test IdP cannot be reached right now');
      expect(res.headers['retry-after']).toBe('60');
      expect((await auditEvents(h, 'signin.failed'))[0]?.detail).toMatchObject({ provider: 'oidc', reason: 'provider-unreachable' });

      back = await startOidcIdp({ port, accounts: [{ id: 'alice', email: 'alice@example.com', email_verified: true }], clients: [{ clientId: 'latchkey', clientSecret: SECRET, redirectUris: [CALLBACK] }] });
      const retried = await press();
      expect(retried.status).toBe(303);
      expect(String(retried.headers.location).startsWith(`http://127.0.0.1:${port}/`)).toBe(true);
    } finally {
      await back?.stop();
      await h.close();
    }
  });
});

describe('with both the PIN and a provider (OAUTH_LOGIN=oidc,pin)', () => {
  const s = useProviderHarness({ OAUTH_LOGIN: 'oidc,pin' });

  it('offers both; the PIN still approves, and its grant names nobody', async () => {
    const client = await register(s.h, BODIES.claude);
    const page = await openConsent(s.h, client);
    expect(page.res.text).toContain('Continue with Test IdP');
    expect(page.res.text).toMatch(/name="pin"/);
    const res = await postConsent(s.h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(res.status).toBe(303);
    expect((await auditEvents(s.h, 'consent.approved'))[0]).toMatchObject({ actor: 'pin' });
    expect((await auditEvents(s.h, 'consent.approved'))[0]?.subject).toBeUndefined();
  });
});

describe('GitHub in the consent flow, against the stand-in', () => {
  let github: GithubStandin;
  beforeAll(async () => {
    github = await startGithubStandin({
      users: [
        { id: 583231, login: 'octocat', name: 'The Octocat', emails: [{ email: 'octocat@github.com', verified: true, primary: true }], orgs: { acme: 'active' } },
        { id: 1001, login: 'invited', emails: [{ email: 'invited@users.example', verified: true, primary: true }], orgs: { acme: 'pending' } },
        {
          id: 1002,
          login: 'unverified-dev',
          name: 'Dev Eloper',
          emails: [
            { email: 'dev@users.example', verified: false, primary: true },
            { email: 'dev@elsewhere.example', verified: true, primary: false },
          ],
          orgs: { acme: 'active' },
        },
      ],
      apps: [{ clientId: 'Iv1.supertest', clientSecret: 'github-supertest-secret-0123', callbackUrl: `${ISSUER}/login/callback/github` }],
    });
  });
  afterAll(async () => {
    await github?.stop();
  });

  const inner = useHarness();
  let h: Harness;
  beforeEach(async () => {
    h = await inner.start({
      OAUTH_GITHUB_CLIENT_ID: 'Iv1.supertest',
      OAUTH_GITHUB_CLIENT_SECRET: 'github-supertest-secret-0123',
      OAUTH_GITHUB_URL: github.url,
      OAUTH_GITHUB_API_URL: github.apiUrl,
      OAUTH_ALLOWED_GITHUB_ORGS: 'acme',
    });
  });

  async function throughGithub(login: string): Promise<{ res: Response; csrf: string; client: RegisteredClient; verifier: string }> {
    const client = await register(h, BODIES.claude);
    const p = pkce();
    const page = await openConsent(h, client, { pkce: p });
    expect(page.res.text).toContain('Continue with GitHub');
    const started = await pressContinue(h, page, 'github');
    expect(started.location.startsWith(`${github.url}/login/oauth/authorize?`)).toBe(true);
    const back = await github.signIn(started.location, login);
    const res = await returnFromProvider(h, back, { [CSRF_COOKIE]: page.csrf, [SIGN_IN_COOKIE]: started.signIn });
    return { res, csrf: page.csrf, client, verifier: p.verifier };
  }

  it('an active member of an allowed organisation connects as github:<id>; the grant keeps the organisation for the refresh re-check', async () => {
    const { res, csrf, client, verifier } = await throughGithub('octocat');
    expectPage(res, 200, 'as <strong>octocat@github.com</strong>');
    const approved = await postConsent(h, { consent: consentFieldOf(res.text), csrf, decision: 'approve' });
    const code = redirectParams(approved).get('code') ?? '';
    const tokens = (await exchange(h, client, { code, state: null, iss: null, location: '', verifier, redirectUri: client.redirect_uris[0] ?? '' })).body as TokenBody;
    expect(await introspect(h, tokens.access_token)).toMatchObject({ active: true, sub: 'github:583231', username: 'octocat@github.com' });
    const [grant] = await h.services.store.listGrants(h.clock.now(), { subject: 'github:583231' });
    expect(grant?.approvedBy).toEqual({
      subject: 'github:583231',
      email: 'octocat@github.com',
      name: 'The Octocat',
      provider: 'github',
      emailVerified: true,
      githubLogin: 'octocat',
      githubOrgs: ['acme'],
    });
    expect((await refresh(h, client, tokens.refresh_token ?? '')).status).toBe(200);
  });

  it('an unverified primary address is never the identity: the page, the token and the audit name the GitHub login', async () => {
    const { res, csrf, client, verifier } = await throughGithub('unverified-dev');
    expectPage(res, 200, 'as <strong>unverified-dev</strong>');
    expect(res.text).not.toContain('users.example');
    const approved = await postConsent(h, { consent: consentFieldOf(res.text), csrf, decision: 'approve' });
    const code = redirectParams(approved).get('code') ?? '';
    const tokens = (await exchange(h, client, { code, state: null, iss: null, location: '', verifier, redirectUri: client.redirect_uris[0] ?? '' })).body as TokenBody;
    expect(await introspect(h, tokens.access_token)).toMatchObject({ active: true, sub: 'github:1002', username: 'unverified-dev' });
    const [grant] = await h.services.store.listGrants(h.clock.now(), { subject: 'github:1002' });
    expect(grant?.approvedBy).toEqual({ subject: 'github:1002', name: 'Dev Eloper', provider: 'github', emailVerified: false, githubLogin: 'unverified-dev', githubOrgs: ['acme'] });
    const events = await auditEvents(h);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['signin.succeeded', 'consent.approved']));
    // Neither the unverified primary nor the verified secondary address stands for the person.
    expect(JSON.stringify(events)).not.toMatch(/dev@/);
  });

  it('a pending invitation is not membership: a page, and nothing else', async () => {
    const { res } = await throughGithub('invited');
    expectPage(res, 403, 'invited@users.example is not on the list');
  });
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { checkAccess } from '../../src/identity/access-policy.js';
import type { LoginProvider, LoginTransaction } from '../../src/identity/login-provider.js';
import { freePort } from '../helpers/running-app.js';
import { startOidcIdp, type IdpAccount, type OidcIdp } from '../helpers/oidc-idp.js';
import { expectRefused, identityConfig, loginFailure, only, providersFor, startBlackhole } from './fixtures.js';

/**
 * Sign-in with an OpenID provider, through the real thing: panva's oidc-provider as the
 * upstream IdP, openid-client as the relying party, the browser's part done by fetch.
 * Every refusal of issue 12 is a real response the provider (or a tampered copy) sends.
 */

const CALLBACK = 'http://127.0.0.1:3000/login/callback/oidc';
const SECRET = 'oidc-client-secret-0123456789abcdef';

const accounts: IdpAccount[] = [
  { id: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
  { id: 'mallory', email: 'mallory@elsewhere.example', email_verified: true, name: 'Mallory' },
  { id: 'carol', email: 'carol@example.com', email_verified: false, name: 'Carol' },
  { id: 'erin', email: 'erin@example.com', xms_edov: true, preferred_username: 'erin@example.com' },
  { id: 'frank', preferred_username: 'frank@example.com', name: 'Frank' },
];

const clients = [
  { clientId: 'latchkey', clientSecret: SECRET, redirectUris: [CALLBACK] },
  { clientId: 'latchkey-post', clientSecret: SECRET, redirectUris: [CALLBACK], tokenEndpointAuthMethod: 'client_secret_post' as const },
  { clientId: 'latchkey-public', redirectUris: [CALLBACK] },
];

let idp: OidcIdp;

function env(issuer: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    OAUTH_OIDC_ISSUER: issuer,
    OAUTH_OIDC_CLIENT_ID: 'latchkey',
    OAUTH_OIDC_CLIENT_SECRET: SECRET,
    OAUTH_OIDC_NAME: 'Test IdP',
    OAUTH_ALLOWED_DOMAINS: 'example.com',
    ...extra,
  };
}

async function provider(extra: Record<string, string> = {}, issuer = idp.issuer): Promise<LoginProvider> {
  return only((await providersFor(env(issuer, extra))).providers, 'oidc');
}

/** The browser's round trip: to the provider, sign in as `account`, back with the callback URL. */
async function roundTrip(p: LoginProvider, account: string, via: OidcIdp = idp): Promise<{ back: URL; transaction: LoginTransaction }> {
  const { url, transaction } = await p.start(CALLBACK);
  return { back: await via.signIn(url, account), transaction };
}

beforeAll(async () => {
  idp = await startOidcIdp({ accounts, clients });
});

afterAll(async () => {
  await idp.stop();
});

describe('sign-in with an OpenID provider', () => {
  it('asks for code with PKCE S256, state, nonce and the configured scopes', async () => {
    const p = await provider();
    expect(p.label).toBe('Test IdP');
    const { url, transaction } = await p.start(CALLBACK);
    const query = new URL(url).searchParams;
    expect(url.startsWith(`${idp.issuer}/auth?`)).toBe(true);
    expect(Object.fromEntries(query)).toMatchObject({
      response_type: 'code',
      client_id: 'latchkey',
      redirect_uri: CALLBACK,
      scope: 'openid email profile',
      code_challenge_method: 'S256',
      state: transaction.state,
      nonce: transaction.nonce,
    });
    expect(query.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(transaction.provider).toBe('oidc');
    // The transaction is what the integrator keeps in a cookie: plain JSON.
    expect(JSON.parse(JSON.stringify(transaction))).toEqual(transaction);
  });

  it('returns the signed-in person, who is on the list', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    const person = await p.finish(back, transaction, CALLBACK);
    expect(person).toEqual({
      provider: 'oidc',
      subject: `oidc:127.0.0.1:${idp.port}:alice`,
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice Example',
    });
    expect(checkAccess(person, identityConfig(env(idp.issuer)).policy)).toEqual({ allowed: true });
  });

  it('reads only the query of the URL it is given, so a proxy cannot change the redirect_uri', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    const asSeenBehindAProxy = new URL(`http://10.0.0.5:8080/login/callback/oidc${back.search}`);
    expect((await p.finish(asSeenBehindAProxy, transaction, CALLBACK)).subject).toBe(`oidc:127.0.0.1:${idp.port}:alice`);
  });

  it('works as a public client and with client_secret_post', async () => {
    const publicClient = await provider({ OAUTH_OIDC_CLIENT_ID: 'latchkey-public', OAUTH_OIDC_CLIENT_SECRET: '' });
    const a = await roundTrip(publicClient, 'alice');
    expect((await publicClient.finish(a.back, a.transaction, CALLBACK)).email).toBe('alice@example.com');

    const post = await provider({ OAUTH_OIDC_CLIENT_ID: 'latchkey-post', OAUTH_OIDC_TOKEN_AUTH_METHOD: 'client_secret_post' });
    const b = await roundTrip(post, 'alice');
    expect((await post.finish(b.back, b.transaction, CALLBACK)).email).toBe('alice@example.com');
  });

  it('reads the e-mail from UserInfo when the provider keeps it out of the ID token', async () => {
    const userinfoIdp = await startOidcIdp({ accounts, clients, claimsOnlyAtUserinfo: true });
    try {
      const p = await provider({}, userinfoIdp.issuer);
      const { back, transaction } = await roundTrip(p, 'alice', userinfoIdp);
      const person = await p.finish(back, transaction, CALLBACK);
      expect(person).toMatchObject({ email: 'alice@example.com', emailVerified: true, name: 'Alice Example' });
      expect(userinfoIdp.requests).toContain('/me');
    } finally {
      await userinfoIdp.stop();
    }
  });

  it("trusts Entra ID's xms_edov in place of email_verified, and never preferred_username", async () => {
    const p = await provider();
    const erin = await roundTrip(p, 'erin');
    expect(await p.finish(erin.back, erin.transaction, CALLBACK)).toMatchObject({ email: 'erin@example.com', emailVerified: true });
    const frank = await roundTrip(p, 'frank');
    const person = await p.finish(frank.back, frank.transaction, CALLBACK);
    expect(person.email).toBeUndefined();
    expect(checkAccess(person, identityConfig(env(idp.issuer)).policy)).toMatchObject({ allowed: false, reason: 'not-allowed' });
  });
});

describe('refusals', () => {
  it('a person off the list', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'mallory');
    const person = await p.finish(back, transaction, CALLBACK);
    expect(person.emailVerified).toBe(true);
    expect(checkAccess(person, identityConfig(env(idp.issuer)).policy)).toMatchObject({ allowed: false, reason: 'not-allowed' });
  });

  it('an unverified e-mail address', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'carol');
    const person = await p.finish(back, transaction, CALLBACK);
    expect(person).toMatchObject({ email: 'carol@example.com', emailVerified: false });
    expect(checkAccess(person, identityConfig(env(idp.issuer)).policy)).toMatchObject({ allowed: false, reason: 'unverified-email' });
  });

  it('a callback whose state is not this browser\'s: the token endpoint is never called', async () => {
    const p = await provider();
    const first = await roundTrip(p, 'alice');
    const other = await p.start(CALLBACK);
    const tokenCallsBefore = idp.requests.filter((r) => r === '/token').length;
    await expectRefused(() => p.finish(first.back, other.transaction, CALLBACK), 'state-mismatch');
    const noState = new URL(first.back);
    noState.searchParams.delete('state');
    await expectRefused(() => p.finish(noState, first.transaction, CALLBACK), 'state-mismatch');
    const twoStates = new URL(first.back);
    twoStates.searchParams.append('state', first.transaction.state);
    await expectRefused(() => p.finish(twoStates, first.transaction, CALLBACK), 'state-mismatch');
    expect(idp.requests.filter((r) => r === '/token').length).toBe(tokenCallsBefore);
  });

  it('a transaction of another provider, or without its PKCE verifier', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    await expectRefused(() => p.finish(back, { ...transaction, provider: 'github' }, CALLBACK), 'state-mismatch');
    await expectRefused(() => p.finish(back, { ...transaction, codeVerifier: '' }, CALLBACK), 'state-mismatch');
    const { nonce: _unused, ...withoutNonce } = transaction;
    await expectRefused(() => p.finish(back, withoutNonce, CALLBACK), 'state-mismatch');
  });

  it('a replayed callback: the provider refuses the used code', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    await p.finish(back, transaction, CALLBACK);
    const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'provider-error');
    expect(err.detail).toContain('invalid_grant');
  });

  it('a code redeemed without its PKCE verifier', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    const other = await p.start(CALLBACK);
    const err = await expectRefused(() => p.finish(back, { ...transaction, codeVerifier: other.transaction.codeVerifier }, CALLBACK), 'provider-error');
    expect(err.detail).toContain('invalid_grant');
  });

  it('a wrong nonce', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    const other = await p.start(CALLBACK);
    const err = await expectRefused(() => p.finish(back, { ...transaction, nonce: other.transaction.nonce }, CALLBACK), 'invalid-id-token');
    expect(err.detail).toContain('nonce');
  });

  it('an ID token signed by a key the provider never published', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    idp.tamperIdTokens({ key: 'foreign' });
    try {
      await expectRefused(() => p.finish(back, transaction, CALLBACK), 'invalid-id-token');
    } finally {
      idp.tamperIdTokens(undefined);
    }
  });

  it('an ID token for another audience', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    idp.tamperIdTokens({ claims: (c) => ({ ...c, aud: 'another-app' }) });
    try {
      const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'invalid-id-token');
      expect(err.detail).toContain('aud');
    } finally {
      idp.tamperIdTokens(undefined);
    }
  });

  it('an ID token from another issuer', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    idp.tamperIdTokens({ claims: (c) => ({ ...c, iss: 'https://attacker.example' }) });
    try {
      const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'invalid-id-token');
      expect(err.detail).toContain('iss');
    } finally {
      idp.tamperIdTokens(undefined);
    }
  });

  it('an expired ID token', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    idp.tamperIdTokens({ claims: (c) => ({ ...c, iat: hourAgo - 600, exp: hourAgo }) });
    try {
      const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'invalid-id-token');
      expect(err.detail).toContain('TIMESTAMP');
    } finally {
      idp.tamperIdTokens(undefined);
    }
  });

  it('an authorization response from another issuer (RFC 9207 mix-up)', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'alice');
    const mixedUp = new URL(back);
    mixedUp.searchParams.set('iss', 'https://attacker.example');
    await expectRefused(() => p.finish(mixedUp, transaction, CALLBACK), 'invalid-response');
  });

  it('a person who cancels at the provider', async () => {
    const p = await provider();
    const { url, transaction } = await p.start(CALLBACK);
    const back = await idp.signIn(url, 'alice', 'deny');
    expect(back.searchParams.get('error')).toBe('access_denied');
    await expectRefused(() => p.finish(back, transaction, CALLBACK), 'denied');
  });
});

describe('a provider that is down', () => {
  it('does not stop startup; sign-ins fail until it is back, then discovery is retried', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const { providers, logLines } = await providersFor(env(issuer));
    const p = only(providers, 'oidc');
    expect(logLines.join('')).toContain('sign-in provider discovery failed');
    const err = await expectRefused(() => p.start(CALLBACK), 'provider-unreachable');
    expect(err.message).toBe('Test IdP cannot be reached right now. Try again in a few minutes.');

    const late = await startOidcIdp({ accounts, clients, port });
    try {
      const { back, transaction } = await roundTrip(p, 'alice', late);
      expect((await p.finish(back, transaction, CALLBACK)).email).toBe('alice@example.com');
    } finally {
      await late.stop();
    }
    expect(logLines.join('')).toContain('sign-in provider discovered');
    expect(logLines.join('')).not.toContain(SECRET);
  });

  it('answers within its timeout when the provider accepts connections and never replies', async () => {
    const hole = await startBlackhole();
    try {
      const { providers } = await providersFor(env(hole.url), 300);
      const err = await expectRefused(() => only(providers, 'oidc').start(CALLBACK), 'provider-unreachable');
      expect(err.detail).toContain('TIMEOUT');
    } finally {
      await hole.stop();
    }
  });

  it('refuses with provider-unreachable when it goes down between sending the browser and its return', async () => {
    const shortLived = await startOidcIdp({ accounts, clients });
    const p = await provider({}, shortLived.issuer);
    const { back, transaction } = await roundTrip(p, 'alice', shortLived);
    await shortLived.stop();
    await expectRefused(() => p.finish(back, transaction, CALLBACK), 'provider-unreachable');
  });

  it('says which issuer a provider announces when it is not the configured one', async () => {
    // A discovery document whose issuer is not the URL it was fetched from (OpenID Connect Discovery §4.3).
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: 'https://elsewhere.example', authorization_endpoint: 'https://elsewhere.example/auth' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { providers, logLines } = await providersFor(env(issuer));
      const err = await loginFailure(() => only(providers, 'oidc').start(CALLBACK));
      expect(err.reason).toBe('provider-unreachable');
      expect(err.detail).toContain('"https://elsewhere.example"');
      const warning = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.level === 40);
      expect(warning).toMatchObject({ provider: 'oidc', reason: 'provider-misconfigured' });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

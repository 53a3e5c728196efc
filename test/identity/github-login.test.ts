import { FakeClock } from '../helpers/fake-clock.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { checkAccess } from '../../src/identity/access-policy.js';
import type { LoginProvider, LoginTransaction } from '../../src/identity/login-provider.js';
import { freePort } from '../helpers/running-app.js';
import { startGithubStandin, type GithubStandin, type StandinUser } from '../helpers/github-standin.js';
import { expectRefused, identityConfig, only, providersFor, startBlackhole } from './fixtures.js';

/**
 * Sign-in with GitHub through openid-client and the REST API, against the stand-in built
 * from GitHub's documented responses (test/helpers/github-standin.ts), laid out as GitHub
 * Enterprise Server (API under /api/v3), which is what OAUTH_GITHUB_URL and
 * OAUTH_GITHUB_API_URL exist for.
 */

const CALLBACK = 'http://127.0.0.1:3000/login/callback/github';
const CLIENT_ID = 'Iv1.8a61f9b3a7aba766';
const SECRET = 'github-client-secret-0123456789abcdef0123';

const users: StandinUser[] = [
  {
    id: 583231,
    login: 'octocat',
    name: 'The Octocat',
    emails: [
      { email: 'octocat@github.com', verified: true, primary: true },
      { email: 'octo@elsewhere.example', verified: true, primary: false },
    ],
    orgs: { 'Latchkey-Team': 'active', other: 'active' },
  },
  {
    id: 1001,
    login: 'unverified-dev',
    name: null,
    emails: [
      { email: 'dev@github.com', verified: false, primary: true },
      { email: 'dev@elsewhere.example', verified: true, primary: false },
    ],
  },
  { id: 1002, login: 'invited', emails: [{ email: 'invited@elsewhere.example', verified: true, primary: true }], orgs: { 'latchkey-team': 'pending' } },
  { id: 1003, login: 'stranger', emails: [{ email: 'stranger@elsewhere.example', verified: true, primary: true }] },
];

let github: GithubStandin;
const clock = new FakeClock();

function env(extra: Record<string, string> = {}, standin: { url: string; apiUrl: string } = github): Record<string, string> {
  return {
    OAUTH_GITHUB_CLIENT_ID: CLIENT_ID,
    OAUTH_GITHUB_CLIENT_SECRET: SECRET,
    OAUTH_GITHUB_URL: standin.url,
    OAUTH_GITHUB_API_URL: standin.apiUrl,
    OAUTH_ALLOWED_GITHUB_USERS: 'octocat',
    ...extra,
  };
}

async function provider(extra: Record<string, string> = {}): Promise<LoginProvider> {
  return only((await providersFor(env(extra))).providers, 'github');
}

async function roundTrip(p: LoginProvider, login: string): Promise<{ back: URL; transaction: LoginTransaction }> {
  const { url, transaction } = await p.start(CALLBACK);
  return { back: await github.signIn(url, login), transaction };
}

beforeAll(async () => {
  github = await startGithubStandin({ users, apps: [{ clientId: CLIENT_ID, clientSecret: SECRET, callbackUrl: CALLBACK }], now: () => clock.now() });
});

afterAll(async () => {
  await github.stop();
});

describe('sign-in with GitHub', () => {
  it('asks for read:user and user:email with PKCE S256 and state, and no nonce', async () => {
    const p = await provider();
    expect(p.label).toBe('GitHub');
    const { url, transaction } = await p.start(CALLBACK);
    expect(url.startsWith(`${github.url}/login/oauth/authorize?`)).toBe(true);
    expect(Object.fromEntries(new URL(url).searchParams)).toMatchObject({
      client_id: CLIENT_ID,
      redirect_uri: CALLBACK,
      scope: 'read:user user:email',
      code_challenge_method: 'S256',
      state: transaction.state,
    });
    expect(transaction).toEqual({ provider: 'github', state: transaction.state, codeVerifier: transaction.codeVerifier });
  });

  it('returns the person: numeric id as subject, login, name and verified primary e-mail', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'octocat');
    const person = await p.finish(back, transaction, CALLBACK);
    expect(person).toEqual({
      provider: 'github',
      subject: 'github:583231',
      email: 'octocat@github.com',
      emailVerified: true,
      name: 'The Octocat',
      githubLogin: 'octocat',
    });
    expect(checkAccess(person, identityConfig(env()).policy)).toEqual({ allowed: true });
    // Without an organisation allow-list no membership is looked up.
    expect(github.apiCalls.some((path) => path.startsWith('/user/memberships'))).toBe(false);
  });

  it('refuses a person off the list', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'stranger');
    const person = await p.finish(back, transaction, CALLBACK);
    expect(checkAccess(person, identityConfig(env()).policy)).toMatchObject({ allowed: false, reason: 'not-allowed' });
  });

  it('uses only the primary address, and refuses it unverified', async () => {
    const p = await provider({ OAUTH_ALLOWED_DOMAINS: 'github.com, elsewhere.example' });
    const { back, transaction } = await roundTrip(p, 'unverified-dev');
    const person = await p.finish(back, transaction, CALLBACK);
    expect(person).toEqual({ provider: 'github', subject: 'github:1001', email: 'dev@github.com', emailVerified: false, githubLogin: 'unverified-dev' });
    // The verified secondary address does not stand in for the primary.
    expect(checkAccess(person, identityConfig(env({ OAUTH_ALLOWED_DOMAINS: 'github.com, elsewhere.example' })).policy)).toMatchObject({
      allowed: false,
      reason: 'unverified-email',
    });
  });
});

describe('organisation allow-list', () => {
  const orgEnv = { OAUTH_ALLOWED_GITHUB_USERS: '', OAUTH_ALLOWED_GITHUB_ORGS: 'latchkey-team' };

  it('asks for read:org and lets an active member in', async () => {
    const p = await provider(orgEnv);
    const { url, transaction } = await p.start(CALLBACK);
    expect(new URL(url).searchParams.get('scope')).toBe('read:user user:email read:org');
    const person = await p.finish(await github.signIn(url, 'octocat'), transaction, CALLBACK);
    // The organisation's name as GitHub spells it, and only the allow-listed ones.
    expect(person.githubOrgs).toEqual(['Latchkey-Team']);
    expect(checkAccess(person, identityConfig(env(orgEnv)).policy)).toEqual({ allowed: true });
  });

  it('refuses a non-member and a member whose invitation is still pending', async () => {
    const p = await provider(orgEnv);
    for (const login of ['stranger', 'invited']) {
      const { back, transaction } = await roundTrip(p, login);
      const person = await p.finish(back, transaction, CALLBACK);
      expect(person.githubOrgs).toEqual([]);
      expect(checkAccess(person, identityConfig(env(orgEnv)).policy)).toMatchObject({ allowed: false, reason: 'not-allowed' });
    }
  });
});

describe('refusals', () => {
  it('a callback whose state is not this browser\'s', async () => {
    const p = await provider();
    const first = await roundTrip(p, 'octocat');
    const other = await p.start(CALLBACK);
    await expectRefused(() => p.finish(first.back, other.transaction, CALLBACK), 'state-mismatch');
  });

  it('a replayed callback: GitHub refuses the used code (with HTTP 200, as documented)', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'octocat');
    await p.finish(back, transaction, CALLBACK);
    const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'provider-error');
    expect(err.detail).toContain('bad_verification_code');
  });

  it('a code older than its ten minutes', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'octocat');
    clock.advance(11 * 60_000);
    const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'provider-error');
    expect(err.detail).toContain('bad_verification_code');
  });

  it('a code redeemed without its PKCE verifier', async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'octocat');
    const other = await p.start(CALLBACK);
    await expectRefused(() => p.finish(back, { ...transaction, codeVerifier: other.transaction.codeVerifier }, CALLBACK), 'provider-error');
  });

  it('a wrong client secret', async () => {
    const p = await provider({ OAUTH_GITHUB_CLIENT_SECRET: 'not-the-secret' });
    const { back, transaction } = await roundTrip(p, 'octocat');
    const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'provider-error');
    expect(err.detail).toContain('incorrect_client_credentials');
  });

  it('a person who cancels at GitHub', async () => {
    const p = await provider();
    const { url, transaction } = await p.start(CALLBACK);
    const back = await github.signIn(url, 'octocat', 'deny');
    expect(back.searchParams.get('error')).toBe('access_denied');
    await expectRefused(() => p.finish(back, transaction, CALLBACK), 'denied');
  });

  it("GitHub's API failing after the code was exchanged", async () => {
    const p = await provider();
    const { back, transaction } = await roundTrip(p, 'octocat');
    github.failApi(503);
    try {
      const err = await expectRefused(() => p.finish(back, transaction, CALLBACK), 'provider-unreachable');
      expect(err.detail).toContain('HTTP 503');
    } finally {
      github.failApi(undefined);
    }
  });

  it('GitHub unreachable (closed port), or accepting and never answering', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const down = only((await providersFor(env({}, { url: closed, apiUrl: `${closed}/api/v3` }))).providers, 'github');
    const { transaction } = await down.start(CALLBACK);
    const back = new URL(`${CALLBACK}?code=abc&state=${transaction.state}`);
    await expectRefused(() => down.finish(back, transaction, CALLBACK), 'provider-unreachable');

    const hole = await startBlackhole();
    try {
      const hanging = only((await providersFor(env({}, { url: hole.url, apiUrl: `${hole.url}/api/v3` }), 300)).providers, 'github');
      const started = await hanging.start(CALLBACK);
      const err = await expectRefused(
        () => hanging.finish(new URL(`${CALLBACK}?code=abc&state=${started.transaction.state}`), started.transaction, CALLBACK),
        'provider-unreachable',
      );
      expect(err.detail).toContain('TIMEOUT');
    } finally {
      await hole.stop();
    }
  });
});

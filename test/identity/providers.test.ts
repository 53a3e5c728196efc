import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startGithubStandin, type GithubStandin } from '../helpers/github-standin.js';
import { startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { providersFor } from './fixtures.js';

/** createLoginProviders: what the consent page will offer, from the configuration. */

const OIDC_SECRET = 'oidc-secret-never-logged-0123456789';
const GITHUB_SECRET = 'github-secret-never-logged-0123456789';
let idp: OidcIdp;
let github: GithubStandin;

beforeAll(async () => {
  idp = await startOidcIdp({ accounts: [], clients: [{ clientId: 'latchkey', clientSecret: OIDC_SECRET, redirectUris: ['http://127.0.0.1:3000/login/callback/oidc'] }] });
  github = await startGithubStandin({ users: [], apps: [] });
});

afterAll(async () => {
  await idp.stop();
  await github.stop();
});

const both = (): Record<string, string> => ({
  OAUTH_OIDC_ISSUER: idp.issuer,
  OAUTH_OIDC_CLIENT_ID: 'latchkey',
  OAUTH_OIDC_CLIENT_SECRET: OIDC_SECRET,
  OAUTH_OIDC_NAME: 'Google',
  OAUTH_GITHUB_CLIENT_ID: 'Iv1.0123456789abcdef',
  OAUTH_GITHUB_CLIENT_SECRET: GITHUB_SECRET,
  OAUTH_GITHUB_URL: github.url,
  OAUTH_GITHUB_API_URL: github.apiUrl,
  OAUTH_ALLOWED_EMAILS: 'alice@example.com',
});

describe('createLoginProviders', () => {
  it('creates the configured providers in OAUTH_LOGIN order, leaving the PIN to the caller', async () => {
    const { providers } = await providersFor({ ...both(), OAUTH_LOGIN: 'github,pin,oidc' });
    expect(providers.map((p) => [p.id, p.label])).toEqual([
      ['github', 'GitHub'],
      ['oidc', 'Google'],
    ]);
  });

  it('creates none for the PIN alone, and only the chosen ones', async () => {
    expect((await providersFor({})).providers).toEqual([]);
    expect((await providersFor({ ...both(), OAUTH_LOGIN: 'oidc' })).providers.map((p) => p.id)).toEqual(['oidc']);
  });

  it('discovers the OpenID provider at startup, once, and logs no secret', async () => {
    const before = idp.requests.filter((r) => r === '/.well-known/openid-configuration').length;
    const { providers, logLines } = await providersFor(both());
    expect(idp.requests.filter((r) => r === '/.well-known/openid-configuration').length).toBe(before + 1);
    for (const p of providers) await p.start('http://127.0.0.1:3000/login/callback/x');
    expect(idp.requests.filter((r) => r === '/.well-known/openid-configuration').length).toBe(before + 1);
    const log = logLines.join('');
    expect(log).toContain('sign-in provider discovered');
    expect(log).not.toContain(OIDC_SECRET);
    expect(log).not.toContain(GITHUB_SECRET);
  });
});

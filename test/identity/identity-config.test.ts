import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../src/config.js';
import { parseIdentityConfig, type IdentityConfig } from '../../src/identity/identity-config.js';

/** The reader loadConfig hands over: trimmed values, blank means unset. */
function parse(env: Record<string, string>): IdentityConfig {
  return parseIdentityConfig((name) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  });
}

function configError(env: Record<string, string>): ConfigError {
  try {
    parse(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

/** One line, naming the variable first, as startup prints it. */
function expectLine(env: Record<string, string>, variable: string, text: string | RegExp): void {
  const err = configError(env);
  expect(err.variable).toBe(variable);
  expect(err.message.startsWith(`${variable}: `)).toBe(true);
  expect(err.message).not.toContain('\n');
  expect(err.message).toMatch(text);
}

const OIDC = {
  OAUTH_OIDC_ISSUER: 'https://accounts.google.com',
  OAUTH_OIDC_CLIENT_ID: '1234.apps.googleusercontent.com',
  OAUTH_OIDC_CLIENT_SECRET: 'GOCSPX-secret',
  OAUTH_ALLOWED_EMAILS: 'alice@example.com',
};
const GITHUB = {
  OAUTH_GITHUB_CLIENT_ID: 'Iv1.0123456789abcdef',
  OAUTH_GITHUB_CLIENT_SECRET: 'github-secret',
  OAUTH_ALLOWED_GITHUB_USERS: 'octocat',
};

describe('parseIdentityConfig: what it accepts', () => {
  it('is the PIN alone when nothing is configured', () => {
    expect(parse({})).toEqual({
      login: ['pin'],
      policy: { emails: [], domains: [], githubUsers: [], githubOrgs: [], ownerEmails: [] },
    });
  });

  it('reads an OpenID provider with its defaults', () => {
    const config = parse(OIDC);
    expect(config.login).toEqual(['oidc']);
    expect(config.oidc).toEqual({
      issuer: 'https://accounts.google.com',
      clientId: '1234.apps.googleusercontent.com',
      clientSecret: 'GOCSPX-secret',
      tokenAuthMethod: 'client_secret_basic',
      scopes: ['openid', 'email', 'profile'],
      name: 'accounts.google.com',
    });
    expect(config.github).toBeUndefined();
  });

  it('reads every OpenID variable, and a public client without a secret', () => {
    const config = parse({
      OAUTH_OIDC_ISSUER: 'https://auth.example.com/application/o/latchkey/',
      OAUTH_OIDC_CLIENT_ID: 'latchkey',
      OAUTH_OIDC_SCOPES: 'openid email',
      OAUTH_OIDC_NAME: 'Example SSO',
      OAUTH_ALLOWED_DOMAINS: 'Example.com',
    });
    expect(config.oidc).toEqual({
      issuer: 'https://auth.example.com/application/o/latchkey/',
      clientId: 'latchkey',
      tokenAuthMethod: 'client_secret_basic',
      scopes: ['openid', 'email'],
      name: 'Example SSO',
    });
    expect(config.policy.domains).toEqual(['example.com']);
    expect(parse({ ...OIDC, OAUTH_OIDC_TOKEN_AUTH_METHOD: 'client_secret_post' }).oidc?.tokenAuthMethod).toBe('client_secret_post');
  });

  it('keeps the issuer exactly as given, since discovery compares it with the provider\'s own', () => {
    expect(parse({ ...OIDC, OAUTH_OIDC_ISSUER: 'https://login.microsoftonline.com/0b5e7c2d-1111-2222-3333-444455556666/v2.0' }).oidc?.issuer).toBe(
      'https://login.microsoftonline.com/0b5e7c2d-1111-2222-3333-444455556666/v2.0',
    );
  });

  it('accepts plain http only for a loopback issuer (tests, an IdP on the same machine)', () => {
    expect(parse({ ...OIDC, OAUTH_OIDC_ISSUER: 'http://127.0.0.1:9000' }).oidc?.issuer).toBe('http://127.0.0.1:9000');
    expect(parse({ ...OIDC, OAUTH_OIDC_ISSUER: 'http://localhost:9000/realms/x' }).oidc?.issuer).toBe('http://localhost:9000/realms/x');
  });

  it('reads GitHub with github.com as the default, and GitHub Enterprise URLs', () => {
    expect(parse(GITHUB).github).toEqual({
      clientId: 'Iv1.0123456789abcdef',
      clientSecret: 'github-secret',
      url: 'https://github.com',
      apiUrl: 'https://api.github.com',
    });
    const enterprise = parse({ ...GITHUB, OAUTH_GITHUB_URL: 'https://github.example.com/', OAUTH_GITHUB_API_URL: 'https://github.example.com/api/v3' });
    expect(enterprise.github).toMatchObject({ url: 'https://github.example.com', apiUrl: 'https://github.example.com/api/v3' });
  });

  it('normalises the lists to lower case and accepts commas or spaces', () => {
    const config = parse({
      ...OIDC,
      ...GITHUB,
      OAUTH_ALLOWED_EMAILS: 'Alice@Example.com, bob@example.org',
      OAUTH_ALLOWED_DOMAINS: '@Example.net team.example.com',
      OAUTH_ALLOWED_GITHUB_USERS: '@OctoCat,hubot',
      OAUTH_ALLOWED_GITHUB_ORGS: 'My-Org',
      OAUTH_OWNER_EMAILS: 'Owner@Example.com',
    });
    expect(config.policy).toEqual({
      emails: ['alice@example.com', 'bob@example.org'],
      domains: ['example.net', 'team.example.com'],
      githubUsers: ['octocat', 'hubot'],
      githubOrgs: ['my-org'],
      ownerEmails: ['owner@example.com'],
    });
  });

  it('offers every configured provider by default, and OAUTH_LOGIN chooses and orders', () => {
    expect(parse({ ...OIDC, ...GITHUB }).login).toEqual(['oidc', 'github']);
    expect(parse({ ...OIDC, ...GITHUB, OAUTH_LOGIN: 'github, pin,oidc' }).login).toEqual(['github', 'pin', 'oidc']);
    expect(parse({ ...OIDC, OAUTH_LOGIN: 'PIN oidc pin' }).login).toEqual(['pin', 'oidc']);
    expect(parse({ OAUTH_LOGIN: 'pin' }).login).toEqual(['pin']);
  });

  it('counts the owners list as an allow-list (only the owners may sign in)', () => {
    const { OAUTH_ALLOWED_EMAILS: _unused, ...withoutAllowList } = OIDC;
    expect(parse({ ...withoutAllowList, OAUTH_OWNER_EMAILS: 'me@example.com' }).policy.ownerEmails).toEqual(['me@example.com']);
  });

  it('accepts Microsoft Entra ID multi-tenant issuers (openid-client checks iss against the tenant template)', () => {
    expect(parse({ ...OIDC, OAUTH_OIDC_ISSUER: 'https://login.microsoftonline.com/organizations/v2.0' }).oidc?.issuer).toBe(
      'https://login.microsoftonline.com/organizations/v2.0',
    );
  });
});

describe('parseIdentityConfig: each mistake stops startup with one line naming the variable', () => {
  it('an issuer that is not an absolute URL', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_ISSUER: 'accounts.google.com' }, 'OAUTH_OIDC_ISSUER', /is not an absolute URL/);
  });

  it('an issuer over plain http to another host', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_ISSUER: 'http://auth.example.com' }, 'OAUTH_OIDC_ISSUER', /must use https:\/\//);
  });

  it('an issuer with a query or fragment', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_ISSUER: 'https://auth.example.com/?tenant=1' }, 'OAUTH_OIDC_ISSUER', /query or fragment/);
    expectLine({ ...OIDC, OAUTH_OIDC_ISSUER: 'https://auth.example.com/#x' }, 'OAUTH_OIDC_ISSUER', /query or fragment/);
  });

  it('an issuer with credentials in it', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_ISSUER: 'https://user:pw@auth.example.com' }, 'OAUTH_OIDC_ISSUER', /user name or password/);
  });

  it('OpenID variables without an issuer', () => {
    expectLine({ OAUTH_OIDC_CLIENT_ID: 'x', OAUTH_ALLOWED_EMAILS: 'a@example.com' }, 'OAUTH_OIDC_ISSUER', /required when OAUTH_OIDC_CLIENT_ID is set/);
    expectLine({ OAUTH_OIDC_NAME: 'Google' }, 'OAUTH_OIDC_ISSUER', /required when OAUTH_OIDC_NAME is set/);
  });

  it('an issuer without a client ID', () => {
    const { OAUTH_OIDC_CLIENT_ID: _unused, ...env } = OIDC;
    expectLine(env, 'OAUTH_OIDC_CLIENT_ID', /required when OAUTH_OIDC_ISSUER is set/);
  });

  it('an unknown token authentication method, or one without a secret', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_TOKEN_AUTH_METHOD: 'private_key_jwt' }, 'OAUTH_OIDC_TOKEN_AUTH_METHOD', /not client_secret_basic or client_secret_post/);
    const { OAUTH_OIDC_CLIENT_SECRET: _unused, ...publicClient } = OIDC;
    expectLine({ ...publicClient, OAUTH_OIDC_TOKEN_AUTH_METHOD: 'client_secret_post' }, 'OAUTH_OIDC_TOKEN_AUTH_METHOD', /only with OAUTH_OIDC_CLIENT_SECRET/);
  });

  it('scopes without openid or email, or with an invalid scope', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_SCOPES: 'email profile' }, 'OAUTH_OIDC_SCOPES', /must include openid/);
    expectLine({ ...OIDC, OAUTH_OIDC_SCOPES: 'openid profile' }, 'OAUTH_OIDC_SCOPES', /must include email/);
    expectLine({ ...OIDC, OAUTH_OIDC_SCOPES: 'openid "email"' }, 'OAUTH_OIDC_SCOPES', /is not a valid scope/);
  });

  it('a button label that is too long or has control characters', () => {
    expectLine({ ...OIDC, OAUTH_OIDC_NAME: 'x'.repeat(41) }, 'OAUTH_OIDC_NAME', /at most 40 printable/);
    expectLine({ ...OIDC, OAUTH_OIDC_NAME: 'Goo\u0007gle' }, 'OAUTH_OIDC_NAME', /at most 40 printable/);
  });

  it('GitHub variables without a client ID, and a client ID without its secret', () => {
    expectLine({ OAUTH_GITHUB_CLIENT_SECRET: 's', OAUTH_ALLOWED_EMAILS: 'a@example.com' }, 'OAUTH_GITHUB_CLIENT_ID', /required when OAUTH_GITHUB_CLIENT_SECRET is set/);
    expectLine({ OAUTH_GITHUB_API_URL: 'https://github.example.com/api/v3' }, 'OAUTH_GITHUB_CLIENT_ID', /required when OAUTH_GITHUB_API_URL is set/);
    const { OAUTH_GITHUB_CLIENT_SECRET: _unused, ...env } = GITHUB;
    expectLine(env, 'OAUTH_GITHUB_CLIENT_SECRET', /required when OAUTH_GITHUB_CLIENT_ID is set/);
  });

  it('GitHub URLs that are not https', () => {
    expectLine({ ...GITHUB, OAUTH_GITHUB_URL: 'http://github.example.com' }, 'OAUTH_GITHUB_URL', /must use https:\/\//);
    expectLine({ ...GITHUB, OAUTH_GITHUB_API_URL: 'ftp://github.example.com' }, 'OAUTH_GITHUB_API_URL', /must use https:\/\//);
  });

  it('an entry that is not an e-mail address', () => {
    expectLine({ ...OIDC, OAUTH_ALLOWED_EMAILS: 'alice' }, 'OAUTH_ALLOWED_EMAILS', /"alice" is not an e-mail address/);
    expectLine({ ...OIDC, OAUTH_OWNER_EMAILS: 'owner@' }, 'OAUTH_OWNER_EMAILS', /"owner@" is not an e-mail address/);
  });

  it('an entry that is not a domain name (wildcards included)', () => {
    expectLine({ ...OIDC, OAUTH_ALLOWED_DOMAINS: '*.example.com' }, 'OAUTH_ALLOWED_DOMAINS', /is not a domain name.*subdomains are listed separately/);
    expectLine({ ...OIDC, OAUTH_ALLOWED_DOMAINS: 'localhost' }, 'OAUTH_ALLOWED_DOMAINS', /is not a domain name/);
  });

  it('an entry that is not a GitHub name', () => {
    expectLine({ ...GITHUB, OAUTH_ALLOWED_GITHUB_USERS: 'octo--cat' }, 'OAUTH_ALLOWED_GITHUB_USERS', /is not a GitHub user or organisation name/);
    expectLine({ ...GITHUB, OAUTH_ALLOWED_GITHUB_ORGS: 'my_org' }, 'OAUTH_ALLOWED_GITHUB_ORGS', /is not a GitHub user or organisation name/);
  });

  it('GitHub allow-lists without GitHub sign-in', () => {
    expectLine({ ...OIDC, OAUTH_ALLOWED_GITHUB_USERS: 'octocat' }, 'OAUTH_ALLOWED_GITHUB_USERS', /GitHub sign-in is not/);
    expectLine({ ...OIDC, OAUTH_ALLOWED_GITHUB_ORGS: 'my-org' }, 'OAUTH_ALLOWED_GITHUB_ORGS', /GitHub sign-in is not/);
  });

  it('e-mail allow-lists without any provider', () => {
    expectLine({ OAUTH_ALLOWED_EMAILS: 'a@example.com' }, 'OAUTH_ALLOWED_EMAILS', /no sign-in provider is/);
    expectLine({ OAUTH_ALLOWED_DOMAINS: 'example.com' }, 'OAUTH_ALLOWED_DOMAINS', /no sign-in provider is/);
    expectLine({ OAUTH_OWNER_EMAILS: 'a@example.com' }, 'OAUTH_OWNER_EMAILS', /no sign-in provider is/);
  });

  it('an OpenID provider with no allow-list: an open door is never the default', () => {
    const { OAUTH_ALLOWED_EMAILS: _unused, ...env } = OIDC;
    expectLine(env, 'OAUTH_ALLOWED_EMAILS', /OAUTH_OIDC_ISSUER is set but nobody is allowed to sign in with it/);
    // GitHub lists do not admit anyone through the OpenID provider.
    expectLine({ ...env, ...GITHUB }, 'OAUTH_ALLOWED_EMAILS', /OAUTH_OIDC_ISSUER is set but nobody is allowed/);
  });

  it('GitHub with no allow-list', () => {
    const { OAUTH_ALLOWED_GITHUB_USERS: _unused, ...env } = GITHUB;
    expectLine(env, 'OAUTH_ALLOWED_GITHUB_USERS', /OAUTH_GITHUB_CLIENT_ID is set but nobody is allowed to sign in with it/);
  });

  it('OAUTH_LOGIN naming something unknown or an unconfigured provider, or nothing', () => {
    expectLine({ ...OIDC, OAUTH_LOGIN: 'oidc,google' }, 'OAUTH_LOGIN', /"google" is not one of pin, oidc, github/);
    expectLine({ ...OIDC, OAUTH_LOGIN: 'oidc,github' }, 'OAUTH_LOGIN', /names github, but OAUTH_GITHUB_CLIENT_ID is not set/);
    expectLine({ ...GITHUB, OAUTH_LOGIN: 'oidc' }, 'OAUTH_LOGIN', /names oidc, but OAUTH_OIDC_ISSUER is not set/);
    expectLine({ OAUTH_LOGIN: ' , ' }, 'OAUTH_LOGIN', /must list at least one/);
  });
});

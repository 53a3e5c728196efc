import { ConfigError, listOf as list, SCOPE_TOKEN as scopeToken } from '../config-error.js';
import { isLoopbackHttp } from '../net/loopback.js';
import type { AccessPolicy } from './access-policy.js';

/**
 * The sign-in variables of issue 12, parsed once at startup. Every mistake stops startup with
 * one ConfigError line naming the variable; an allow-list is required for every provider, so
 * a provider is never an open door.
 */

export type LoginMethod = 'pin' | 'oidc' | 'github';

export interface OidcSettings {
  /** OAUTH_OIDC_ISSUER, exactly as given (it is compared with the discovered `issuer`). */
  issuer: string;
  clientId: string;
  /** Absent: a public client, authenticated by PKCE alone. */
  clientSecret?: string;
  /** How the secret is sent to the token endpoint (RFC 6749 §2.3.1). */
  tokenAuthMethod: 'client_secret_basic' | 'client_secret_post';
  scopes: string[];
  /** The button's label. */
  name: string;
}

export interface GithubSettings {
  clientId: string;
  clientSecret: string;
  /** Web origin of GitHub (or GitHub Enterprise Server): authorize and token endpoints. */
  url: string;
  /** REST API root: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server. */
  apiUrl: string;
}

export interface IdentityConfig {
  /** What the consent page offers, in order. */
  login: LoginMethod[];
  oidc?: OidcSettings;
  github?: GithubSettings;
  policy: AccessPolicy;
}

const LOGIN_METHODS: readonly LoginMethod[] = ['pin', 'oidc', 'github'];
const DEFAULT_SCOPES = 'openid email profile';
const emailAddress = /^[^\s@,;<>"]+@[^\s@,;<>"]+$/;
const domainName = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;
/** GitHub user and organisation names: letters, digits, single inner hyphens, at most 39 characters. */
const githubName = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}$/;

/** https, or http to a loopback host (tests, an IdP on the same machine); no query, fragment or credentials. */
function providerUrl(variable: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, `"${value}" is not an absolute URL (expected e.g. https://accounts.google.com)`);
  }
  if (url.protocol !== 'https:' && !isLoopbackHttp(url)) {
    throw new ConfigError(variable, `"${value}" must use https:// (http:// only for localhost or 127.0.0.1)`);
  }
  if (url.search || url.hash || value.includes('?') || value.includes('#')) {
    throw new ConfigError(variable, `"${value}" must not contain a query or fragment`);
  }
  if (url.username || url.password) {
    throw new ConfigError(variable, `"${value}" must not contain a user name or password`);
  }
  return value;
}

function emails(variable: string, value: string | undefined): string[] {
  return list(value).map((entry) => {
    const email = entry.toLowerCase();
    if (!emailAddress.test(email)) throw new ConfigError(variable, `"${entry}" is not an e-mail address`);
    return email;
  });
}

function domains(variable: string, value: string | undefined): string[] {
  return list(value).map((entry) => {
    const domain = entry.toLowerCase().replace(/^@/, '');
    if (!domainName.test(domain)) {
      throw new ConfigError(variable, `"${entry}" is not a domain name (give it exactly, e.g. example.com; subdomains are listed separately)`);
    }
    return domain;
  });
}

function githubNames(variable: string, value: string | undefined): string[] {
  return list(value).map((entry) => {
    const name = entry.toLowerCase().replace(/^@/, '');
    if (!githubName.test(name)) throw new ConfigError(variable, `"${entry}" is not a GitHub user or organisation name`);
    return name;
  });
}

function parseOidc(get: (name: string) => string | undefined): OidcSettings | undefined {
  const issuer = get('OAUTH_OIDC_ISSUER');
  if (issuer === undefined) {
    const stray = ['OAUTH_OIDC_CLIENT_ID', 'OAUTH_OIDC_CLIENT_SECRET', 'OAUTH_OIDC_SCOPES', 'OAUTH_OIDC_NAME', 'OAUTH_OIDC_TOKEN_AUTH_METHOD'].find(
      (name) => get(name) !== undefined,
    );
    if (stray !== undefined) throw new ConfigError('OAUTH_OIDC_ISSUER', `is required when ${stray} is set`);
    return undefined;
  }
  providerUrl('OAUTH_OIDC_ISSUER', issuer);
  const clientId = get('OAUTH_OIDC_CLIENT_ID');
  if (clientId === undefined) {
    throw new ConfigError('OAUTH_OIDC_CLIENT_ID', 'is required when OAUTH_OIDC_ISSUER is set (the client ID of Latchkey at your provider)');
  }
  const clientSecret = get('OAUTH_OIDC_CLIENT_SECRET');
  const method = get('OAUTH_OIDC_TOKEN_AUTH_METHOD') ?? 'client_secret_basic';
  if (method !== 'client_secret_basic' && method !== 'client_secret_post') {
    throw new ConfigError('OAUTH_OIDC_TOKEN_AUTH_METHOD', `"${method}" is not client_secret_basic or client_secret_post`);
  }
  if (get('OAUTH_OIDC_TOKEN_AUTH_METHOD') !== undefined && clientSecret === undefined) {
    throw new ConfigError('OAUTH_OIDC_TOKEN_AUTH_METHOD', 'applies only with OAUTH_OIDC_CLIENT_SECRET (a public client sends no secret)');
  }
  const scopes = list(get('OAUTH_OIDC_SCOPES') ?? DEFAULT_SCOPES);
  for (const scope of scopes) {
    if (!scopeToken.test(scope)) throw new ConfigError('OAUTH_OIDC_SCOPES', `"${scope}" is not a valid scope`);
  }
  for (const required of ['openid', 'email']) {
    // openid makes it OpenID Connect; email because every allow-list for it matches verified addresses.
    if (!scopes.includes(required)) {
      throw new ConfigError('OAUTH_OIDC_SCOPES', `must include ${required} (got "${scopes.join(' ')}"; the default is "${DEFAULT_SCOPES}")`);
    }
  }
  const name = get('OAUTH_OIDC_NAME') ?? new URL(issuer).hostname;
  if (name.length > 40 || /[\p{Cc}]/u.test(name)) {
    throw new ConfigError('OAUTH_OIDC_NAME', 'must be at most 40 printable characters (it labels a button)');
  }
  return {
    issuer,
    clientId,
    ...(clientSecret !== undefined ? { clientSecret } : {}),
    tokenAuthMethod: method,
    scopes,
    name,
  };
}

function parseGithub(get: (name: string) => string | undefined): GithubSettings | undefined {
  const clientId = get('OAUTH_GITHUB_CLIENT_ID');
  const clientSecret = get('OAUTH_GITHUB_CLIENT_SECRET');
  if (clientId === undefined) {
    const stray = ['OAUTH_GITHUB_CLIENT_SECRET', 'OAUTH_GITHUB_URL', 'OAUTH_GITHUB_API_URL'].find((name) => get(name) !== undefined);
    if (stray !== undefined) throw new ConfigError('OAUTH_GITHUB_CLIENT_ID', `is required when ${stray} is set`);
    return undefined;
  }
  if (clientSecret === undefined) {
    throw new ConfigError('OAUTH_GITHUB_CLIENT_SECRET', 'is required when OAUTH_GITHUB_CLIENT_ID is set (GitHub OAuth apps always have one)');
  }
  return {
    clientId,
    clientSecret,
    url: providerUrl('OAUTH_GITHUB_URL', get('OAUTH_GITHUB_URL') ?? 'https://github.com').replace(/\/+$/, ''),
    apiUrl: providerUrl('OAUTH_GITHUB_API_URL', get('OAUTH_GITHUB_API_URL') ?? 'https://api.github.com').replace(/\/+$/, ''),
  };
}

function parsePolicy(get: (name: string) => string | undefined): AccessPolicy {
  return {
    emails: emails('OAUTH_ALLOWED_EMAILS', get('OAUTH_ALLOWED_EMAILS')),
    domains: domains('OAUTH_ALLOWED_DOMAINS', get('OAUTH_ALLOWED_DOMAINS')),
    githubUsers: githubNames('OAUTH_ALLOWED_GITHUB_USERS', get('OAUTH_ALLOWED_GITHUB_USERS')),
    githubOrgs: githubNames('OAUTH_ALLOWED_GITHUB_ORGS', get('OAUTH_ALLOWED_GITHUB_ORGS')),
    ownerEmails: emails('OAUTH_OWNER_EMAILS', get('OAUTH_OWNER_EMAILS')),
  };
}

/** An allow-list that would sit unused is a mistake the owner should hear about, not a silent no-op. */
function checkPolicyFitsProviders(policy: AccessPolicy, oidc: boolean, github: boolean): void {
  if (!github) {
    if (policy.githubUsers.length > 0) throw new ConfigError('OAUTH_ALLOWED_GITHUB_USERS', 'is set but GitHub sign-in is not (set OAUTH_GITHUB_CLIENT_ID)');
    if (policy.githubOrgs.length > 0) throw new ConfigError('OAUTH_ALLOWED_GITHUB_ORGS', 'is set but GitHub sign-in is not (set OAUTH_GITHUB_CLIENT_ID)');
  }
  if (!oidc && !github) {
    const byEmail: [string, string[]][] = [
      ['OAUTH_ALLOWED_EMAILS', policy.emails],
      ['OAUTH_ALLOWED_DOMAINS', policy.domains],
      ['OAUTH_OWNER_EMAILS', policy.ownerEmails],
    ];
    const stray = byEmail.find(([, values]) => values.length > 0);
    if (stray !== undefined) {
      throw new ConfigError(stray[0], 'is set but no sign-in provider is (set OAUTH_OIDC_ISSUER or OAUTH_GITHUB_CLIENT_ID)');
    }
  }
  const byEmailCount = policy.emails.length + policy.domains.length + policy.ownerEmails.length;
  if (oidc && byEmailCount === 0) {
    throw new ConfigError(
      'OAUTH_ALLOWED_EMAILS',
      'OAUTH_OIDC_ISSUER is set but nobody is allowed to sign in with it: list people in OAUTH_ALLOWED_EMAILS, OAUTH_ALLOWED_DOMAINS or OAUTH_OWNER_EMAILS (an open door is never the default)',
    );
  }
  if (github && byEmailCount + policy.githubUsers.length + policy.githubOrgs.length === 0) {
    throw new ConfigError(
      'OAUTH_ALLOWED_GITHUB_USERS',
      'OAUTH_GITHUB_CLIENT_ID is set but nobody is allowed to sign in with it: list people in OAUTH_ALLOWED_GITHUB_USERS, OAUTH_ALLOWED_GITHUB_ORGS, OAUTH_ALLOWED_EMAILS, OAUTH_ALLOWED_DOMAINS or OAUTH_OWNER_EMAILS (an open door is never the default)',
    );
  }
}

function parseLogin(value: string | undefined, oidc: boolean, github: boolean): LoginMethod[] {
  const configured: LoginMethod[] = [...(oidc ? ['oidc' as const] : []), ...(github ? ['github' as const] : [])];
  if (value === undefined) return configured.length > 0 ? configured : ['pin'];
  const methods: LoginMethod[] = [];
  for (const entry of list(value)) {
    const method = LOGIN_METHODS.find((m) => m === entry.toLowerCase());
    if (method === undefined) throw new ConfigError('OAUTH_LOGIN', `"${entry}" is not one of ${LOGIN_METHODS.join(', ')}`);
    if (method === 'oidc' && !oidc) throw new ConfigError('OAUTH_LOGIN', 'names oidc, but OAUTH_OIDC_ISSUER is not set');
    if (method === 'github' && !github) throw new ConfigError('OAUTH_LOGIN', 'names github, but OAUTH_GITHUB_CLIENT_ID is not set');
    if (!methods.includes(method)) methods.push(method);
  }
  if (methods.length === 0) throw new ConfigError('OAUTH_LOGIN', `must list at least one of ${LOGIN_METHODS.join(', ')}`);
  return methods;
}

/**
 * Parses the identity variables. `get` returns a variable's trimmed value, or undefined when
 * it is unset or blank (as loadConfig's reader does). Throws ConfigError(variable, message).
 */
export function parseIdentityConfig(get: (name: string) => string | undefined): IdentityConfig {
  const oidc = parseOidc(get);
  const github = parseGithub(get);
  const policy = parsePolicy(get);
  checkPolicyFitsProviders(policy, oidc !== undefined, github !== undefined);
  return {
    login: parseLogin(get('OAUTH_LOGIN'), oidc !== undefined, github !== undefined),
    ...(oidc !== undefined ? { oidc } : {}),
    ...(github !== undefined ? { github } : {}),
    policy,
  };
}

import type { Config } from '../config.js';
import { LoginError } from '../identity/login-provider.js';
import { OidcLogin } from '../identity/oidc-login.js';
import { createLogger } from '../logger.js';
import { callbackUrl } from '../oauth/sign-in/sign-in-flow.js';
import type { Check } from './check.js';

/** Doctor waits this long for the provider's discovery document, and for the callback route. */
const DISCOVERY_TIMEOUT_MS = 5000;

/**
 * `latchkey doctor`'s sign-in checks (docs/identity.md): for an OpenID provider, that
 * discovery answers at OAUTH_OIDC_ISSUER with exactly that issuer (openid-client checks it,
 * as the daemon does) and offers the authorization code flow with PKCE S256; for every
 * provider, the callback URL to register there, built from OAUTH_ISSUER_URL.
 */
export async function checkSignIn(config: Config, add: (c: Check) => void): Promise<void> {
  const { identity } = config;
  if (identity.oidc === undefined && identity.github === undefined) {
    add({ level: 'ok', name: 'sign-in', detail: 'with the PIN only (no OAUTH_OIDC_ISSUER or OAUTH_GITHUB_CLIENT_ID)' });
    return;
  }
  const lists = identity.policy;
  add({
    level: 'ok',
    name: 'sign-in',
    detail: `the consent page offers ${identity.login.join(', ')}; allowed: ${lists.emails.length} e-mail(s), ${lists.domains.length} domain(s), ${lists.githubUsers.length} GitHub user(s), ${lists.githubOrgs.length} organisation(s), ${lists.ownerEmails.length} owner(s)`,
  });
  const callback = (provider: 'oidc' | 'github'): string => callbackUrl(config.issuer, provider);

  if (identity.oidc !== undefined) {
    const { issuer, name } = identity.oidc;
    const login = new OidcLogin(identity.oidc, { logger: createLogger('silent'), timeoutMs: DISCOVERY_TIMEOUT_MS });
    try {
      const metadata = (await login.discover()).serverMetadata();
      const methods = metadata.code_challenge_methods_supported ?? [];
      const responseTypes = metadata.response_types_supported ?? [];
      if (!methods.includes('S256')) {
        add({
          level: 'fail',
          name: 'oidc discovery',
          detail: `${name} at ${issuer} does not announce PKCE S256 (code_challenge_methods_supported: ${methods.length > 0 ? methods.join(', ') : 'absent'})`,
          fix: 'turn on PKCE (S256) for this client at the provider; Latchkey always sends it',
        });
      } else if (!responseTypes.includes('code')) {
        add({ level: 'fail', name: 'oidc discovery', detail: `${name} at ${issuer} does not offer the authorization code flow (response_types_supported: ${responseTypes.join(', ')})`, fix: 'use a provider (or client type) with the authorization code flow' });
      } else {
        add({ level: 'ok', name: 'oidc discovery', detail: `${name} answers at ${issuer} with exactly that issuer, the authorization code flow and PKCE S256` });
      }
    } catch (err) {
      if (!(err instanceof LoginError)) throw err;
      add({
        level: 'fail',
        name: 'oidc discovery',
        detail: `${name} at ${issuer}: ${err.detail ?? err.message}`,
        fix: `check OAUTH_OIDC_ISSUER: it must be exactly the issuer the provider announces (${issuer}/.well-known/openid-configuration must answer, character for character, trailing slash included), and reachable from this machine`,
      });
    }
    add({ level: 'ok', name: 'oidc callback', detail: `register exactly ${callback('oidc')} as a redirect URI at ${name}` });
  }
  if (identity.github !== undefined) {
    add({ level: 'ok', name: 'github callback', detail: `the OAuth app's "Authorization callback URL" must be exactly ${callback('github')} (at ${identity.github.url})` });
  }
}

/**
 * That each provider's callback URL, on the public issuer URL, reaches this Latchkey: a
 * tunnel or proxy that sends only some paths to Latchkey (docs/deploy.md) must send
 * /login/ too, or every sign-in ends on someone else's 404. Latchkey answers a callback that
 * carries no sign-in with one of its own pages (a 4xx, logged, not audited), recognised by
 * its stylesheet. Run only once the issuer URL itself answered with Latchkey's metadata.
 */
export async function checkCallbackRoutes(config: Config, add: (c: Check) => void): Promise<void> {
  const providers = (['oidc', 'github'] as const).filter((p) => config.identity[p] !== undefined);
  for (const provider of providers) {
    const url = callbackUrl(config.issuer, provider);
    const name = `${provider} callback route`;
    try {
      const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), headers: { accept: 'text/html', 'user-agent': 'latchkey-doctor' } });
      const body = await res.text();
      const ours = res.status >= 400 && res.status < 500 && (res.headers.get('content-type') ?? '').includes('text/html') && body.includes('/assets/latchkey.css');
      if (ours) add({ level: 'ok', name, detail: `${url} reaches Latchkey` });
      else {
        add({
          level: 'fail',
          name,
          detail: `${url} answers HTTP ${res.status}, not with Latchkey's page: the provider would send people back to something else`,
          fix: 'route /login/ on this hostname to Latchkey, as /authorize and /token are (docs/deploy.md, docs/identity.md)',
        });
      }
    } catch (err) {
      add({ level: 'fail', name, detail: `${url} does not answer (${(err as Error).message})`, fix: 'route /login/ on this hostname to Latchkey (docs/deploy.md)' });
    }
  }
}

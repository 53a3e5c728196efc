import type { Logger } from 'pino';
import { GithubLogin } from './github-login.js';
import type { IdentityConfig } from './identity-config.js';
import type { LoginProvider } from './login-provider.js';
import { OidcLogin } from './oidc-login.js';

/** Each request to a provider gets this long before the sign-in fails as 'provider-unreachable'. */
export const DEFAULT_PROVIDER_TIMEOUT_MS = 10_000;

/**
 * The sign-in providers the consent page offers, in OAUTH_LOGIN's order ('pin' is not a
 * provider and is left to the caller). An OpenID provider is discovered here, once; if it is
 * down, this still resolves (the failure is logged) and its sign-ins retry discovery.
 */
export async function createLoginProviders(
  config: IdentityConfig,
  deps: { logger: Logger; timeoutMs?: number },
): Promise<LoginProvider[]> {
  const providerDeps = { logger: deps.logger, timeoutMs: deps.timeoutMs ?? DEFAULT_PROVIDER_TIMEOUT_MS };
  const providers: LoginProvider[] = [];
  for (const method of config.login) {
    if (method === 'oidc' && config.oidc !== undefined) {
      const oidc = new OidcLogin(config.oidc, providerDeps);
      // Logged inside; a provider that is down must not stop Latchkey.
      await oidc.discover().catch(() => undefined);
      providers.push(oidc);
    }
    if (method === 'github' && config.github !== undefined) {
      providers.push(new GithubLogin(config.github, config.policy.githubOrgs, providerDeps));
    }
  }
  return providers;
}

import {
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  calculatePKCECodeChallenge,
  ClientSecretPost,
  Configuration,
  randomPKCECodeVerifier,
  randomState,
} from 'openid-client';
import { isLoopbackHttp } from '../net/loopback.js';
import { callbackWithQuery, checkReturnedState } from './callback.js';
import { GithubApiError, readGithubUser } from './github-user-api.js';
import type { GithubSettings } from './identity-config.js';
import type { LoginProvider, LoginTransaction, ProviderDeps } from './login-provider.js';
import type { Person } from './person.js';
import { loginError, toLoginError } from './relying-party-errors.js';

/**
 * Sign-in with GitHub, which is an OAuth 2.0 server but not an OpenID provider: no discovery,
 * no ID token. openid-client is the relying party with a Configuration built from GitHub's
 * documented endpoints ("Authorizing OAuth apps": /login/oauth/authorize and
 * /login/oauth/access_token, client secret in the body; PKCE S256 since the changelog of
 * 2025-07-14, "PKCE support for OAuth and GitHub App authentication"). Who signed in
 * comes from the REST API: the numeric user id (stable across renames), the login, the
 * primary e-mail and whether GitHub verified it, and organisation membership when an
 * organisation allow-list is set.
 */
export class GithubLogin implements LoginProvider {
  readonly id = 'github' as const;
  readonly label = 'GitHub';
  private readonly configuration: Configuration;
  private readonly scopes: string[];

  /** `orgs`: OAUTH_ALLOWED_GITHUB_ORGS; membership is looked up (and read:org asked for) only when it is not empty. */
  constructor(
    private readonly settings: GithubSettings,
    private readonly orgs: readonly string[],
    deps: ProviderDeps,
  ) {
    // GitHub's scopes: read:user and user:email for the profile and the addresses ("Scopes for OAuth apps").
    this.scopes = ['read:user', 'user:email', ...(orgs.length > 0 ? ['read:org'] : [])];
    this.configuration = new Configuration(
      {
        issuer: settings.url,
        authorization_endpoint: `${settings.url}/login/oauth/authorize`,
        token_endpoint: `${settings.url}/login/oauth/access_token`,
      },
      settings.clientId,
      settings.clientSecret,
      ClientSecretPost(settings.clientSecret),
    );
    this.configuration.timeout = deps.timeoutMs / 1000;
    // Only the tests' stand-in (or a GitHub Enterprise Server on this machine) is plain http.
    if (isLoopbackHttp(new URL(settings.url)) || isLoopbackHttp(new URL(settings.apiUrl))) allowInsecureRequests(this.configuration);
  }

  authorizationOrigin(): string {
    return new URL(this.settings.url).origin;
  }

  async start(callbackUrl: string): Promise<{ url: string; transaction: LoginTransaction }> {
    const codeVerifier = randomPKCECodeVerifier();
    const state = randomState();
    const url = buildAuthorizationUrl(this.configuration, {
      redirect_uri: new URL(callbackUrl).href,
      scope: this.scopes.join(' '),
      state,
      code_challenge: await calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, transaction: { provider: this.id, state, codeVerifier } };
  }

  async finish(currentUrl: URL, transaction: LoginTransaction, callbackUrl: string): Promise<Person> {
    checkReturnedState(currentUrl, transaction, this.id, this.label);
    try {
      const tokens = await authorizationCodeGrant(this.configuration, callbackWithQuery(callbackUrl, currentUrl), {
        pkceCodeVerifier: transaction.codeVerifier,
        expectedState: transaction.state,
      });
      const user = await readGithubUser(this.configuration, tokens.access_token, this.settings.apiUrl, this.orgs);
      return {
        provider: 'github',
        subject: `github:${user.id}`,
        ...(user.primaryEmail !== undefined ? { email: user.primaryEmail.email } : {}),
        emailVerified: user.primaryEmail?.verified === true,
        ...(user.name !== undefined ? { name: user.name } : {}),
        githubLogin: user.login,
        ...(this.orgs.length > 0 ? { githubOrgs: user.orgs } : {}),
      };
    } catch (err) {
      if (err instanceof GithubApiError) {
        throw loginError(err.status >= 500 ? 'provider-unreachable' : 'invalid-response', this.label, err.message);
      }
      throw toLoginError(err, this.label);
    }
  }
}

import {
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  calculatePKCECodeChallenge,
  ClientSecretBasic,
  ClientSecretPost,
  discovery,
  enableNonRepudiationChecks,
  fetchUserInfo,
  None,
  randomNonce,
  randomPKCECodeVerifier,
  randomState,
  type ClientAuth,
  type Configuration,
} from 'openid-client';
import { isLoopbackHttp } from '../net/loopback.js';
import { callbackWithQuery, checkReturnedState } from './callback.js';
import type { OidcSettings } from './identity-config.js';
import type { LoginProvider, LoginTransaction, ProviderDeps } from './login-provider.js';
import { personFromOidcClaims, type Claims } from './oidc-claims.js';
import type { Person } from './person.js';
import { loginError, toLoginError } from './relying-party-errors.js';

/**
 * Sign-in with any OpenID provider, by discovery (OpenID Connect Discovery 1.0), with
 * openid-client as the relying party: authorization code with PKCE (S256), state and nonce.
 * The ID token's signature is checked against the provider's published keys even though it
 * arrives over TLS from the token endpoint (enableNonRepudiationChecks), so a token the
 * provider did not sign is refused.
 *
 * Discovery runs at startup and is cached. A provider that is down does not stop Latchkey:
 * the next sign-in tries again, and until then each one fails with 'provider-unreachable'.
 */
export class OidcLogin implements LoginProvider {
  readonly id = 'oidc' as const;
  readonly label: string;
  private configuration: Configuration | undefined;
  private discovering: Promise<Configuration> | undefined;

  constructor(
    private readonly settings: OidcSettings,
    private readonly deps: ProviderDeps,
  ) {
    this.label = settings.name;
  }

  /** The discovered authorization endpoint's origin; the issuer's until discovery succeeds. */
  authorizationOrigin(): string {
    const endpoint = this.configuration?.serverMetadata().authorization_endpoint;
    return new URL(endpoint ?? this.settings.issuer).origin;
  }

  /** The provider's configuration, discovered once; concurrent sign-ins share one attempt. */
  discover(): Promise<Configuration> {
    if (this.configuration !== undefined) return Promise.resolve(this.configuration);
    this.discovering ??= this.runDiscovery().finally(() => {
      this.discovering = undefined;
    });
    return this.discovering;
  }

  private async runDiscovery(): Promise<Configuration> {
    const { issuer, clientId, clientSecret } = this.settings;
    const server = new URL(issuer);
    try {
      this.configuration = await discovery(server, clientId, clientSecret, this.clientAuthentication(), {
        timeout: this.deps.timeoutMs / 1000,
        execute: [enableNonRepudiationChecks, ...(isLoopbackHttp(server) ? [allowInsecureRequests] : [])],
      });
      this.deps.logger.info({ provider: this.id, issuer }, 'sign-in provider discovered');
      return this.configuration;
    } catch (err) {
      const failure = toLoginError(err, this.label);
      // Discovery answered but cannot be used: a configuration problem, not an outage.
      const reason = failure.reason === 'provider-unreachable' ? 'provider-unreachable' : 'provider-misconfigured';
      this.deps.logger.warn(
        { provider: this.id, issuer, reason, detail: failure.detail },
        'sign-in provider discovery failed; sign-ins with it fail until it succeeds (retried at each sign-in)',
      );
      throw loginError('provider-unreachable', this.label, failure.detail);
    }
  }

  private clientAuthentication(): ClientAuth {
    const { clientSecret, tokenAuthMethod } = this.settings;
    if (clientSecret === undefined) return None();
    return tokenAuthMethod === 'client_secret_post' ? ClientSecretPost(clientSecret) : ClientSecretBasic(clientSecret);
  }

  async start(callbackUrl: string): Promise<{ url: string; transaction: LoginTransaction }> {
    const config = await this.discover();
    const codeVerifier = randomPKCECodeVerifier();
    const state = randomState();
    const nonce = randomNonce();
    const url = buildAuthorizationUrl(config, {
      redirect_uri: new URL(callbackUrl).href,
      scope: this.settings.scopes.join(' '),
      state,
      nonce,
      code_challenge: await calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    });
    return { url: url.href, transaction: { provider: this.id, state, nonce, codeVerifier } };
  }

  async finish(currentUrl: URL, transaction: LoginTransaction, callbackUrl: string): Promise<Person> {
    checkReturnedState(currentUrl, transaction, this.id, this.label);
    const nonce = transaction.nonce;
    if (nonce === undefined) throw loginError('state-mismatch', this.label, 'transaction without nonce');
    const config = await this.discover();
    try {
      const tokens = await authorizationCodeGrant(config, callbackWithQuery(callbackUrl, currentUrl), {
        pkceCodeVerifier: transaction.codeVerifier,
        expectedState: transaction.state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      const idToken = tokens.claims();
      if (idToken === undefined) throw loginError('invalid-id-token', this.label, 'no ID token in the token response');
      let userinfo: Claims | undefined;
      if (idToken.email === undefined && config.serverMetadata().userinfo_endpoint !== undefined) {
        // fetchUserInfo checks that the response's sub is the ID token's (OpenID Connect Core §5.3.2).
        userinfo = await fetchUserInfo(config, tokens.access_token, idToken.sub);
      }
      return personFromOidcClaims(idToken, userinfo);
    } catch (err) {
      throw toLoginError(err, this.label);
    }
  }
}

import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { approveHeadlessly } from './headless-consent.js';

/**
 * An MCP host in memory: what Claude or ChatGPT keep per connector (client registration,
 * tokens, PKCE verifier), with the consent step done headlessly. The SDK calls
 * redirectToAuthorization; we approve with the PIN and keep the code for finishAuth().
 */
export class HeadlessOAuthProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  storedTokens: OAuthTokens | undefined;
  private verifier = '';
  private code: string | undefined;
  readonly registrations: string[] = [];
  readonly invalidations: string[] = [];
  readonly authorizationUrls: URL[] = [];
  /** Present only to override the RFC 8707 resource; otherwise the SDK takes it from RFC 9728 metadata. */
  validateResourceURL?: (serverUrl: string | URL, resource?: string) => Promise<URL | undefined>;

  constructor(
    private readonly pin: string,
    private readonly redirect: string,
    private readonly metadata: Partial<OAuthClientMetadata> = {},
    /** Overrides the resource the SDK would ask for (RFC 8707), to test audience checks. */
    resourceOverride?: string,
  ) {
    if (resourceOverride !== undefined) this.validateResourceURL = async () => new URL(resourceOverride);
  }

  get redirectUrl(): string {
    return this.redirect;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'latchkey e2e host',
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      ...this.metadata,
    };
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    if (info.client_id !== this.client?.client_id) this.registrations.push(info.client_id);
    this.client = info;
  }

  tokens(): OAuthTokens | undefined {
    return this.storedTokens;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.storedTokens = tokens;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.authorizationUrls.push(url);
    const back = await approveHeadlessly(url, this.pin);
    const code = back.get('code');
    if (!code) throw new Error(`authorization failed: ${back.get('error')} ${back.get('error_description')}`);
    this.code = code;
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.storedTokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = '';
  }

  /** The code from the last headless approval, once. */
  takeCode(): string {
    const code = this.code;
    this.code = undefined;
    if (!code) throw new Error('no authorization code: the SDK did not start an authorization');
    return code;
  }
}

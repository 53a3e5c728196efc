import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { LOGIN_FORM, loginByFetch, type LoginAction } from './login-by-fetch.js';

/**
 * A real OpenID provider for tests: panva's oidc-provider on 127.0.0.1, with accounts whose
 * claims the test chooses, registered clients, and a one-form sign-in page that plain fetch
 * (`signIn`) and Chromium (fill LOGIN_FORM.login, click LOGIN_FORM.approve) can complete.
 * The form signs the person in and grants every requested scope in one step. Like any
 * provider it remembers the browser (a session cookie): a second sign-in in the same browser
 * profile comes straight back without the form, so give each browser test a fresh context.
 *
 * `tamperIdTokens` turns it into a provider gone wrong (or an attacker on its path): the ID
 * token of each token response is re-signed with changed claims or with another key, so a
 * relying party's checks of iss, aud, nonce, exp and the signature meet real tokens.
 */

export interface IdpAccount {
  /** The account id, which is also `sub`. */
  id: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  preferred_username?: string;
  /** Microsoft Entra ID's optional "email domain owner verified" claim. */
  xms_edov?: boolean;
}

export interface IdpClient {
  clientId: string;
  /** Absent: a public client (token_endpoint_auth_method none). */
  clientSecret?: string;
  redirectUris: string[];
  /** The registered client authentication method; default client_secret_basic when there is a secret. */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
}

export interface OidcIdpOptions {
  accounts: IdpAccount[];
  clients: IdpClient[];
  /** Listen on this port (to bring a provider back where it was down); default: any free port. */
  port?: number;
  /**
   * false (default): the ID token carries the claims of the requested scopes, as Google's does.
   * true: they come only from the userinfo endpoint (OpenID Connect Core §5.4), as Authelia does.
   */
  claimsOnlyAtUserinfo?: boolean;
}

/** What a tamper function may do to each ID token before it leaves the token endpoint. */
export interface IdTokenTamper {
  /** New claims, from the genuine ones. */
  claims?: (genuine: JWTPayload) => JWTPayload;
  /** 'foreign': sign with a key the provider never published (same kid, so only the signature differs). */
  key?: 'own' | 'foreign';
}

export interface OidcIdp {
  /** The issuer identifier: http://127.0.0.1:<port>, no trailing slash. */
  issuer: string;
  port: number;
  /** Completes the sign-in page with plain fetch and returns the redirect to the relying party. */
  signIn(authorizationUrl: string, accountId: string, action?: LoginAction): Promise<URL>;
  /** Adds or replaces an account (its claims change from the next sign-in). */
  setAccount(account: IdpAccount): void;
  /** Re-signs every ID token from now on; undefined restores honest tokens. */
  tamperIdTokens(tamper: IdTokenTamper | undefined): void;
  /** Every request path the provider received, in order (to prove a relying party did or did not call). */
  readonly requests: string[];
  stop(): Promise<void>;
}

const KID = 'test-idp-key';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

function loginPage(action: string, error?: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Test IdP: sign in</title></head>
<body>
<h1>Sign in to the test provider</h1>
${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
  <label>Account <input name="login" autocomplete="username" autofocus></label>
  <button type="submit" name="action" value="approve">Sign in and allow</button>
  <button type="submit" name="action" value="deny">Cancel</button>
</form>
</body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function signingKeys(): Promise<{ privateJwk: JWK; foreignJwk: JWK }> {
  const own = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256', { extractable: true });
  return {
    privateJwk: { ...(await exportJWK(own.privateKey)), kid: KID, alg: 'RS256', use: 'sig' },
    foreignJwk: { ...(await exportJWK(foreign.privateKey)), kid: KID, alg: 'RS256', use: 'sig' },
  };
}

export async function startOidcIdp(options: OidcIdpOptions): Promise<OidcIdp> {
  const accounts = new Map(options.accounts.map((a) => [a.id, a]));
  const requests: string[] = [];
  let tamper: IdTokenTamper | undefined;
  const { privateJwk, foreignJwk } = await signingKeys();

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;

  const configuration: Configuration = {
    clients: options.clients.map((c) => ({
      client_id: c.clientId,
      ...(c.clientSecret === undefined
        ? { token_endpoint_auth_method: 'none' }
        : { client_secret: c.clientSecret, token_endpoint_auth_method: c.tokenEndpointAuthMethod ?? 'client_secret_basic' }),
      redirect_uris: c.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    jwks: { keys: [privateJwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified', 'xms_edov'],
      profile: ['name', 'preferred_username'],
    },
    conformIdTokenClaims: options.claimsOnlyAtUserinfo === true,
    pkce: { required: () => true },
    // Explicit lifetimes (oidc-provider asks for them), long enough for any loaded machine.
    ttl: { AccessToken: 600, AuthorizationCode: 600, IdToken: 600, Interaction: 3600, Session: 3600, Grant: 3600 },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => {
      const account = accounts.get(sub);
      if (account === undefined) return undefined;
      return {
        accountId: sub,
        claims: () => {
          const { id, ...claims } = account;
          return { sub: id, ...claims };
        },
      };
    },
    renderError: (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Test IdP error</title><pre>${escapeHtml(JSON.stringify(out))}</pre>`;
    },
  };
  const provider = new Provider(issuer, configuration);

  // Tampering happens after oidc-provider built its genuine token response.
  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    await next();
    const body = ctx.body as { id_token?: unknown } | undefined;
    if (tamper === undefined || ctx.path !== '/token' || ctx.status !== 200 || typeof body?.id_token !== 'string') return;
    const genuine = decodeJwt(body.id_token);
    const claims = tamper.claims ? tamper.claims({ ...genuine }) : genuine;
    const key = await importJWK(tamper.key === 'foreign' ? foreignJwk : privateJwk, 'RS256');
    body.id_token = await new SignJWT(claims)
      .setProtectedHeader({ ...decodeProtectedHeader(body.id_token), alg: 'RS256', kid: KID })
      .sign(key);
  });

  const oidc = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(`/interaction/${details.uid}/login`));
      return;
    }
    if (req.method !== 'POST' || url.pathname !== `/interaction/${details.uid}/login`) {
      res.writeHead(405).end();
      return;
    }
    const form = await readForm(req);
    if (form.get('action') === 'deny') {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'The person cancelled the sign-in.' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const accountId = form.get('login') ?? '';
    if (!accounts.has(accountId)) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(loginPage(`/interaction/${details.uid}/login`, `No account "${accountId}".`));
      return;
    }
    const clientId = String(details.params.client_id);
    const grant = new provider.Grant({ accountId, clientId });
    grant.addOIDCScope(String(details.params.scope));
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { login: { accountId }, consent: { grantId } }, { mergeWithLastSubmission: false });
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', issuer);
    requests.push(url.pathname);
    if (!url.pathname.startsWith('/interaction/')) {
      void oidc(req, res);
      return;
    }
    interaction(req, res, url).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  });

  return {
    issuer,
    port,
    requests,
    signIn: (authorizationUrl, accountId, action = 'approve') => loginByFetch(authorizationUrl, issuer, accountId, action),
    setAccount: (account) => void accounts.set(account.id, account),
    tamperIdTokens: (next) => {
      tamper = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export { LOGIN_FORM };

import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { exchangeAuthorizationCode } from '../oauth/authorization-code-grant.js';
import { authenticateClient, parseBasicAuth, type ClientCredentials } from '../oauth/client-auth.js';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { OAuthContext } from '../oauth/context.js';
import type { TokenResponse } from '../oauth/token-issuer.js';
import type { ClientRecord } from '../store/types.js';
import { invalidRequest, unsupportedGrantType } from '../oauth/errors.js';
import { introspectToken } from '../oauth/introspection.js';
import { refreshAccessToken } from '../oauth/refresh-token-grant.js';
import { revokeToken } from '../oauth/revocation.js';
import { secretMatcher } from '../oauth/secrets.js';
import { cors } from './cors.js';
import { formBody, singleParams } from './params.js';
import { jsonErrorHandler, noStore } from './oauth-response.js';
import { jsonRateLimit } from './rate-limits.js';

/** The form parser of the JSON endpoints: OAUTH_MAX_BODY_BYTES, and few fields (none takes more than 8). */
function formParser(ctx: OAuthContext) {
  return express.urlencoded({ extended: false, limit: ctx.config.maxBodyBytes, parameterLimit: 50 });
}

function clientCredentials(req: Request, body: Record<string, unknown>): ClientCredentials {
  const p = singleParams(body, ['client_id', 'client_secret']);
  const basic = parseBasicAuth(req.headers.authorization);
  return {
    ...(basic ? { basic } : {}),
    ...(p.client_id !== undefined ? { bodyClientId: p.client_id } : {}),
    ...(p.client_secret !== undefined ? { bodyClientSecret: p.client_secret } : {}),
  };
}

type GrantHandler = (ctx: OAuthContext, client: ClientRecord, body: Record<string, unknown>) => Promise<TokenResponse>;

/** One entry per grant type: adding a grant never touches the others. */
const GRANTS = new Map<string, GrantHandler>([
  [
    'authorization_code',
    (ctx, client, body) =>
      exchangeAuthorizationCode(ctx, client, singleParams(body, ['code', 'redirect_uri', 'code_verifier', 'resource'])),
  ],
  ['refresh_token', (ctx, client, body) => refreshAccessToken(ctx, client, singleParams(body, ['refresh_token', 'scope', 'resource']))],
]);

/** POST /token (RFC 6749 §3.2): method, CORS, rate limit, form body, client auth, grant. */
export function tokenRouter(ctx: OAuthContext, clients: ClientResolver): Router {
  const router = Router();
  router.use('/token', cors);
  router.post('/token', jsonRateLimit(ctx.config.tokenRateLimit, 60_000), formParser(ctx), async (req: Request, res: Response) => {
    const body = formBody(req);
    const { grant_type: grantType } = singleParams(body, ['grant_type']);
    if (!grantType) throw invalidRequest('The grant_type parameter is required');
    const grant = GRANTS.get(grantType);
    if (!grant) throw unsupportedGrantType(`Unsupported grant_type "${grantType.slice(0, 100)}"`);
    const client = await authenticateClient(clients, clientCredentials(req, body));
    const tokens = await grant(ctx, client, body);
    noStore(res);
    res.json(tokens);
  });
  router.all('/token', methodNotAllowed);
  router.use('/token', jsonErrorHandler(ctx.logger));
  return router;
}

/** POST /revoke (RFC 7009 §2). */
export function revokeRouter(ctx: OAuthContext, clients: ClientResolver): Router {
  const router = Router();
  router.use('/revoke', cors);
  router.post('/revoke', jsonRateLimit(ctx.config.tokenRateLimit, 60_000), formParser(ctx), async (req: Request, res: Response) => {
    const body = formBody(req);
    const client = await authenticateClient(clients, clientCredentials(req, body));
    await revokeToken(ctx, client, singleParams(body, ['token', 'token_type_hint']));
    noStore(res);
    res.status(200).json({});
  });
  router.all('/revoke', methodNotAllowed);
  router.use('/revoke', jsonErrorHandler(ctx.logger));
  return router;
}

/**
 * POST /introspect (RFC 7662 §2). Resource servers authenticate with the shared secret,
 * as a Bearer token or as the password of Basic authentication (what Python SDK verifiers send).
 */
export function introspectRouter(ctx: OAuthContext): Router {
  const router = Router();
  const secret = ctx.config.introspectionSecret;
  const matches = secret ? secretMatcher(secret) : () => false;
  const authorized = (header: string | undefined): boolean => {
    if (!secret || !header) return false;
    const bearer = /^Bearer\s+(.+)$/i.exec(header);
    if (bearer?.[1]) return matches(bearer[1].trim());
    try {
      const basic = parseBasicAuth(header);
      return basic !== undefined && matches(basic.clientSecret);
    } catch {
      return false;
    }
  };
  // The limit is on failed calls: it stops guessing the secret without ever throttling the
  // resource servers that hold it (one busy MCP server may introspect thousands of times a
  // minute, and a limiter on every call cost 8% of an introspection's CPU time).
  const limitFailures = jsonRateLimit(ctx.config.introspectionRateLimit, 60_000);
  const gate = (req: Request, res: Response, next: NextFunction): void => {
    if (authorized(req.headers.authorization)) next();
    else void limitFailures(req, res, next);
  };
  router.use('/introspect', cors);
  router.post('/introspect', gate, formParser(ctx), async (req: Request, res: Response) => {
    noStore(res);
    if (!authorized(req.headers.authorization)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="latchkey"');
      res.status(401).json({
        error: 'invalid_client',
        error_description: secret
          ? 'Introspection requires Authorization: Bearer <OAUTH_INTROSPECTION_SECRET>'
          : 'Introspection is disabled: set OAUTH_INTROSPECTION_SECRET on the authorization server',
      });
      return;
    }
    res.json(await introspectToken(ctx, singleParams(formBody(req), ['token'])));
  });
  router.all('/introspect', methodNotAllowed);
  router.use('/introspect', jsonErrorHandler(ctx.logger));
  return router;
}

export function methodNotAllowed(req: Request, res: Response): void {
  res.setHeader('Allow', 'POST, OPTIONS');
  res.status(405).json({ error: 'invalid_request', error_description: `${req.method} is not allowed here; use POST` });
}

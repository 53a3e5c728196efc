import { Router, type Request, type Response } from 'express';
import { authenticateClient } from '../oauth/client-auth.js';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { OAuthContext } from '../oauth/context.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { revokeToken } from '../oauth/revocation.js';
import { cors } from './cors.js';
import { jsonErrorHandler, methodNotAllowed, noStore } from './oauth-response.js';
import { clientCredentials, formBody, formParser, singleParams } from './params.js';
import { jsonRateLimit } from './rate-limits.js';
import type { TokenRouteSettings } from './token-routes.js';

/** POST /revoke (RFC 7009 §2): CORS, rate limit (shared setting with /token), form body, client auth, revoke. */
export function revokeRouter(ctx: OAuthContext, clients: ClientResolver, settings: TokenRouteSettings): Router {
  const path = ENDPOINTS.revocation.path;
  const router = Router();
  router.use(path, cors);
  router.post(path, jsonRateLimit(settings.requestsPerMinute, 60_000), formParser(settings.maxBodyBytes), async (req: Request, res: Response) => {
    const body = formBody(req);
    const client = await authenticateClient(clients, clientCredentials(req, body));
    await revokeToken(ctx, client, singleParams(body, ['token', 'token_type_hint']));
    noStore(res);
    res.status(200).json({});
  });
  router.all(path, methodNotAllowed);
  router.use(path, jsonErrorHandler(ctx.logger));
  return router;
}

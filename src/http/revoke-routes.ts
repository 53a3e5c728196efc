import type { Request, Response, Router } from 'express';
import { authenticateClient } from '../oauth/client-auth.js';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { OAuthContext } from '../oauth/context.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { revokeToken } from '../oauth/revocation.js';
import { jsonPostEndpoint } from './json-endpoint.js';
import { noStore } from './oauth-response.js';
import { clientCredentials, formBody, formParser, singleParams } from './params.js';
import { jsonRateLimit } from './rate-limits.js';
import type { TokenRouteSettings } from './token-routes.js';

/** POST /revoke (RFC 7009 §2): CORS, rate limit (shared setting with /token), form body, client auth, revoke. */
export function revokeRouter(ctx: OAuthContext, clients: ClientResolver, settings: TokenRouteSettings): Router {
  return jsonPostEndpoint(
    ENDPOINTS.revocation.path,
    ctx.logger,
    jsonRateLimit(settings.requestsPerMinute, 60_000, { counters: settings.counters, prefix: 'revoke:' }),
    formParser(settings.maxBodyBytes),
    async (req: Request, res: Response) => {
      const body = formBody(req);
      const client = await authenticateClient(clients, clientCredentials(req, body));
      await revokeToken(ctx, client, singleParams(body, ['token', 'token_type_hint']), req.ip);
      noStore(res);
      res.status(200).json({});
    },
  );
}

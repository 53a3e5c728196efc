import type { Request, Response, Router } from 'express';
import { authenticateClient } from '../oauth/client-auth.js';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { OAuthContext } from '../oauth/context.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { invalidRequest, unsupportedGrantType } from '../oauth/errors.js';
import { findGrant } from '../oauth/grants/index.js';
import { jsonPostEndpoint } from './json-endpoint.js';
import { noStore } from './oauth-response.js';
import { clientCredentials, formBody, formParser, singleParams } from './params.js';
import type { RateLimitCounters } from './rate-limit-store.js';
import { jsonRateLimit } from './rate-limits.js';

export interface TokenRouteSettings {
  maxBodyBytes: number;
  requestsPerMinute: number;
  counters: RateLimitCounters;
}

/** POST /token (RFC 6749 §3.2): CORS, rate limit, form body, grant type, client auth, the grant's handler. */
export function tokenRouter(ctx: OAuthContext, clients: ClientResolver, settings: TokenRouteSettings): Router {
  return jsonPostEndpoint(
    ENDPOINTS.token.path,
    ctx.logger,
    jsonRateLimit(settings.requestsPerMinute, 60_000, { counters: settings.counters, prefix: 'token:' }),
    formParser(settings.maxBodyBytes),
    async (req: Request, res: Response) => {
      const body = formBody(req);
      const { grant_type: grantType } = singleParams(body, ['grant_type']);
      if (!grantType) throw invalidRequest('The grant_type parameter is required');
      const grant = findGrant(grantType);
      if (!grant) throw unsupportedGrantType(`Unsupported grant_type "${grantType.slice(0, 100)}"`);
      const client = await authenticateClient(clients, clientCredentials(req, body));
      const tokens = await grant.handle(ctx, client, singleParams(body, grant.parameters));
      noStore(res);
      res.json(tokens);
    },
  );
}

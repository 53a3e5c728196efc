import type { NextFunction, Request, Response, Router } from 'express';
import type { OAuthContext } from '../oauth/context.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { introspectToken, resourceServerAuthenticator } from '../oauth/introspection.js';
import { jsonPostEndpoint } from './json-endpoint.js';
import { noStore } from './oauth-response.js';
import { formBody, formParser, singleParams } from './params.js';
import type { RateLimitCounters } from './rate-limit-store.js';
import { jsonRateLimit } from './rate-limits.js';

export interface IntrospectRouteSettings {
  /** OAUTH_INTROSPECTION_SECRET; undefined turns introspection off. */
  secret: string | undefined;
  maxBodyBytes: number;
  failuresPerMinute: number;
  counters: RateLimitCounters;
}

/** POST /introspect (RFC 7662 §2): resource servers authenticate with the shared secret. */
export function introspectRouter(ctx: OAuthContext, settings: IntrospectRouteSettings): Router {
  const authorized = resourceServerAuthenticator(settings.secret);
  // The limit is on failed calls: it stops guessing the secret without ever throttling the
  // resource servers that hold it (one busy MCP server may introspect thousands of times a minute).
  const limitFailures = jsonRateLimit(settings.failuresPerMinute, 60_000, { counters: settings.counters, prefix: 'introspect:' });
  const gate = (req: Request, res: Response, next: NextFunction): void => {
    if (authorized(req.headers.authorization)) next();
    else void limitFailures(req, res, next);
  };
  return jsonPostEndpoint(ENDPOINTS.introspection.path, ctx.logger, gate, formParser(settings.maxBodyBytes), async (req: Request, res: Response) => {
    noStore(res);
    if (!authorized(req.headers.authorization)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="latchkey"');
      res.status(401).json({
        error: 'invalid_client',
        error_description: settings.secret
          ? 'Introspection requires Authorization: Bearer <OAUTH_INTROSPECTION_SECRET>'
          : 'Introspection is disabled: set OAUTH_INTROSPECTION_SECRET on the authorization server',
      });
      return;
    }
    res.json(await introspectToken(ctx, singleParams(formBody(req), ['token'])));
  });
}

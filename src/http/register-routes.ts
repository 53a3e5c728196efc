import express, { Router, type Request, type Response } from 'express';
import { registerClient } from '../oauth/client-registration.js';
import type { OAuthContext } from '../oauth/context.js';
import { OAuthError } from '../oauth/errors.js';
import { cors } from './cors.js';
import { jsonErrorHandler, noStore } from './oauth-response.js';
import { jsonRateLimit } from './rate-limits.js';
import { methodNotAllowed } from './token-routes.js';

/** POST /register (RFC 7591 §3): CORS, rate limit, JSON body, validate, store, 201. */
export function registerRouter(ctx: OAuthContext): Router {
  const router = Router();
  const json = express.json({ limit: ctx.config.maxBodyBytes, type: () => true, strict: false });
  router.use('/register', cors);
  router.post(
    '/register',
    jsonRateLimit(ctx.config.registrationRateLimit, 3_600_000),
    json,
    async (req: Request, res: Response) => {
      if ((await ctx.store.clientCount()) >= ctx.config.maxClients) {
        throw new OAuthError(
          'access_denied',
          `This server has reached its limit of ${ctx.config.maxClients} registered clients; its owner can delete unused clients or raise OAUTH_MAX_CLIENTS`,
          403,
        );
      }
      const { record, response } = registerClient(req.body, ctx.clock.now(), ctx.random);
      await ctx.store.putClient(record);
      ctx.logger.info(
        { clientId: record.clientId, clientName: record.metadata.client_name, authMethod: record.metadata.token_endpoint_auth_method },
        'client registered',
      );
      noStore(res);
      res.status(201).json(response);
    },
  );
  router.all('/register', methodNotAllowed);
  router.use('/register', jsonErrorHandler(ctx.logger));
  return router;
}

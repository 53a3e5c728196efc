import { Router, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { cors } from './cors.js';
import { jsonErrorHandler, methodNotAllowed } from './oauth-response.js';

/**
 * A JSON endpoint that takes POST: CORS for browser clients, then the given chain (rate
 * limit, body parser, handler), 405 for any other method, and the RFC error JSON for every
 * failure. The chain reads like a sentence at each call site.
 */
export function jsonPostEndpoint(path: string, logger: Logger, ...chain: RequestHandler[]): Router {
  const router = Router();
  router.use(path, cors);
  router.post(path, ...chain);
  router.all(path, methodNotAllowed);
  router.use(path, jsonErrorHandler(logger));
  return router;
}

import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { registerAndStoreClient, type RegistrationDeps } from '../oauth/client-registration.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { OAuthError } from '../oauth/errors.js';
import { jsonPostEndpoint } from './json-endpoint.js';
import { noStore } from './oauth-response.js';
import type { RateLimitCounters } from './rate-limit-store.js';
import { jsonRateLimit } from './rate-limits.js';

export interface RegisterRouteSettings {
  maxBodyBytes: number;
  registrationsPerHour: number;
  counters: RateLimitCounters;
}

/** POST /register (RFC 7591 §3): CORS, rate limit, JSON body, the registration rule, 201. */
export function registerRouter(deps: RegistrationDeps, settings: RegisterRouteSettings): Router {
  const json = express.json({ limit: settings.maxBodyBytes, strict: false });
  // RFC 7591 §3.1: the client metadata is sent as JSON. A form or text body is refused before
  // parsing, rather than read as a JSON document it never was.
  const jsonOnly = (req: Request, _res: Response, next: NextFunction): void => {
    const empty = req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined);
    if (!empty && !req.is('application/json')) {
      throw new OAuthError('invalid_client_metadata', 'The registration must be sent with Content-Type: application/json (RFC 7591 §3.1)', 415);
    }
    next();
  };
  return jsonPostEndpoint(ENDPOINTS.registration.path, deps.logger, jsonRateLimit(settings.registrationsPerHour, 3_600_000, { counters: settings.counters, prefix: 'register:' }), jsonOnly, json, async (req: Request, res: Response) => {
    const response = await registerAndStoreClient(deps, req.body, req.ip);
    noStore(res);
    res.status(201).json(response);
  });
}

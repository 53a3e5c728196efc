import express, { type Request, type Response, type Router } from 'express';
import { registerAndStoreClient, type RegistrationDeps } from '../oauth/client-registration.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { jsonPostEndpoint } from './json-endpoint.js';
import { noStore } from './oauth-response.js';
import { jsonRateLimit } from './rate-limits.js';

export interface RegisterRouteSettings {
  maxBodyBytes: number;
  registrationsPerHour: number;
}

/** POST /register (RFC 7591 §3): CORS, rate limit, JSON body, the registration rule, 201. */
export function registerRouter(deps: RegistrationDeps, settings: RegisterRouteSettings): Router {
  const json = express.json({ limit: settings.maxBodyBytes, type: () => true, strict: false });
  return jsonPostEndpoint(ENDPOINTS.registration.path, deps.logger, jsonRateLimit(settings.registrationsPerHour, 3_600_000), json, async (req: Request, res: Response) => {
    const response = await registerAndStoreClient(deps, req.body);
    noStore(res);
    res.status(201).json(response);
  });
}

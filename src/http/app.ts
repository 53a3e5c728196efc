import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import type { Gateway } from '../gateway/index.js';
import path from 'node:path';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { ConsentSigner } from '../oauth/consent.js';
import type { OAuthContext } from '../oauth/context.js';
import type { PinGuard } from '../oauth/pin-guard.js';
import { adminRouter } from './admin-routes.js';
import { consentRouter } from './consent-routes.js';
import { infoRouter } from './info-routes.js';
import { registerRouter } from './register-routes.js';
import { requestLog } from './request-log.js';
import { securityHeaders } from './security-headers.js';
import { introspectRouter, revokeRouter, tokenRouter } from './token-routes.js';

export interface AppDeps {
  ctx: OAuthContext;
  /** Registered clients and Client ID Metadata Document clients. */
  clients: ClientResolver;
  signer: ConsentSigner;
  pins: PinGuard;
  version: string;
  startedAt: number;
  /** Where views/ and public/ live (the package root). */
  rootDir: string;
  /** The MCP gateway: its servers are resources tokens can be issued for, and it serves their paths. */
  gateway?: Pick<Gateway, 'router' | 'resources'> | undefined;
}

export function createApp(deps: AppDeps): Express {
  const { ctx } = deps;
  const app = express();
  app.disable('x-powered-by');
  // No ETags: every OAuth response is no-store, and hashing each body cost 3% of a request.
  app.set('etag', false);
  app.set('trust proxy', ctx.config.trustProxy);
  app.set('views', path.join(deps.rootDir, 'views'));
  app.set('view engine', 'ejs');
  // Express 5 parses the query with the "simple" parser: repeated keys become arrays, no nesting.
  app.set('query parser', 'simple');

  app.use(requestLog(ctx.logger));
  app.use(
    securityHeaders({
      contentSecurityPolicy: {
        // Exactly these directives: helmet's defaults would add upgrade-insecure-requests, which
        // breaks a plain-http localhost setup, and allow fonts from any https origin.
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'no-referrer' },
      strictTransportSecurity: ctx.config.issuer.startsWith('https:'),
    }),
  );
  // The JSON endpoints, by exact path: a request goes straight to its router instead of being
  // offered to every router before it (routing was 10% of a registration's CPU time). The key
  // follows Express's own matching: case-insensitive, one trailing slash allowed.
  const byPath = new Map<string, Router>([
    ['/token', tokenRouter(ctx, deps.clients)],
    ['/introspect', introspectRouter(ctx)],
    ['/register', registerRouter(ctx)],
    ['/revoke', revokeRouter(ctx, deps.clients)],
  ]);
  app.use((req: Request, res: Response, next: NextFunction) => {
    const router = byPath.get(req.path) ?? byPath.get(req.path.toLowerCase().replace(/(.)\/$/, '$1'));
    if (router) router(req, res, next);
    else next();
  });
  app.use(infoRouter(ctx, deps.version, deps.startedAt));
  // A getter: a gateway reload (SIGHUP) may change the resources.
  const gateway = deps.gateway;
  const resources = gateway ? (): readonly string[] => [...ctx.config.resources, ...gateway.resources()] : (): readonly string[] => ctx.config.resources;
  app.use(consentRouter(ctx, deps.clients, deps.signer, deps.pins, resources));
  app.use(adminRouter({ ctx, pins: deps.pins, version: deps.version, startedAt: deps.startedAt }));
  app.use('/assets', express.static(path.join(deps.rootDir, 'public'), { maxAge: '1h', index: false }));
  if (gateway) app.use(gateway.router);

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not_found', error_description: `Nothing at ${req.method} ${req.path}` });
  });
  // Last resort: never a stack trace, never a 500 for what a client sent.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err === 'object' && err !== null && 'status' in err ? Number((err as { status: unknown }).status) : 500;
    if (!(status >= 400 && status < 500)) ctx.logger.error({ err }, 'unhandled error');
    if (res.headersSent) return;
    res.status(status >= 400 && status < 500 ? status : 500).json({
      error: status >= 400 && status < 500 ? 'invalid_request' : 'server_error',
      error_description: status >= 400 && status < 500 ? 'The request could not be processed' : 'The server hit an unexpected condition; try again',
    });
  });
  return app;
}

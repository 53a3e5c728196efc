import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import path from 'node:path';
import type { Config } from '../config.js';
import type { Gateway } from '../gateway/index.js';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { ConsentDecisionDeps } from '../oauth/consent/consent-decision.js';
import type { ConsentSigner } from '../oauth/consent/consent-form.js';
import type { SignInChoice } from '../oauth/consent/outcomes.js';
import type { OAuthContext } from '../oauth/context.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { isUnavailable } from '../oauth/errors.js';
import { resourceServerAuthenticator } from '../oauth/introspection.js';
import { authorizationServerMetadata } from '../oauth/metadata.js';
import type { TokenSigner } from '../crypto/signed-token.js';
import type { KnownDevices } from '../oauth/known-devices.js';
import type { PinGuard } from '../oauth/pin-guard.js';
import type { SignInDeps } from '../oauth/sign-in/sign-in-flow.js';
import type { AdminSessions } from '../owner/admin-sessions.js';
import type { OwnerConsole } from '../owner/owner-console.js';
import { healthReport, serverStats } from '../owner/server-status.js';
import { accountRouter } from './account-routes.js';
import { adminRouter } from './admin-routes.js';
import { consentRouter } from './consent-routes.js';
import { CSP_DIRECTIVES } from './csp.js';
import { infoRouter } from './info-routes.js';
import { introspectRouter } from './introspect-routes.js';
import { metricsRouter, type MetricsRouteDeps } from './metrics-routes.js';
import { clientFaultStatus, sendOAuthError } from './oauth-response.js';
import { registerRouter } from './register-routes.js';
import type { RateLimitCounters } from './rate-limit-store.js';
import { jsonRateLimit } from './rate-limits.js';
import { requestLog } from './request-log.js';
import { ENDPOINT_LOCAL, requestMetrics, type RequestObserver } from './request-metrics.js';
import { revokeRouter } from './revoke-routes.js';
import { securityHeaders } from './security-headers.js';
import { signInRouter } from './sign-in-routes.js';
import { tokenRouter } from './token-routes.js';

/** The settings the HTTP layer reads; each router gets its part of them. */
export type HttpSettings = Pick<Config, 'issuer' | 'https' | 'trustProxy' | 'limits' | 'introspectionSecret' | 'admin' | 'scopes' | 'cimd' | 'redirects'>;

export interface AppDeps {
  settings: HttpSettings;
  ctx: OAuthContext;
  /** Registered clients and Client ID Metadata Document clients. */
  clients: ClientResolver;
  /** The backend's health (store, and what it kept aside). */
  health: Parameters<typeof healthReport>[0];
  /** The backend's counters: every rate limit counts there. */
  counters: RateLimitCounters;
  /** The backend's key-value entries (used consent forms). */
  kv: ConsentDecisionDeps['kv'];
  signer: ConsentSigner;
  pins: PinGuard;
  devices: KnownDevices;
  loginForms: TokenSigner;
  owner: OwnerConsole;
  adminSessions: AdminSessions;
  /** Sessions of a person's own page (/account). */
  accountSessions: AdminSessions;
  /** What the consent page offers (OAUTH_LOGIN). */
  signIn: SignInChoice;
  /** Sign-in with the identity providers (src/oauth/sign-in/). */
  signInFlow: SignInDeps;
  version: string;
  startedAt: number;
  /** Where views/ and public/ live (the package root). */
  rootDir: string;
  /** The MCP gateway: it serves its servers' paths and their protected-resource metadata. */
  gateway?: Pick<Gateway, 'handler'> | undefined;
  /** GET /metrics and the observer of every request: only when OAUTH_METRICS_TOKEN is set. */
  metrics?: (MetricsRouteDeps & { observer: RequestObserver }) | undefined;
}

export function createApp(deps: AppDeps): Express {
  const { ctx, settings } = deps;
  const { limits } = settings;
  const app = express();
  app.disable('x-powered-by');
  // No ETags: the answers that change (tokens, pages) are no-store and the metadata is cached by max-age, so a validator would only cost a hash per body.
  app.set('etag', false);
  app.set('trust proxy', settings.trustProxy);
  app.set('views', path.join(deps.rootDir, 'views'));
  app.set('view engine', 'ejs');
  // Express 5 parses the query with the "simple" parser: repeated keys become arrays, no nesting.
  app.set('query parser', 'simple');

  if (deps.metrics) app.use(requestMetrics(deps.metrics.observer));
  app.use(requestLog(ctx.logger));
  app.use(
    securityHeaders({
      // Exactly our directives: helmet's defaults would add upgrade-insecure-requests, which
      // breaks a plain-http localhost setup, and allow fonts from any https origin.
      contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'no-referrer' },
      strictTransportSecurity: settings.https,
    }),
  );
  if (deps.metrics) app.use(metricsRouter(deps.metrics));
  // The gateway's MCP paths first: a proxied MCP call is the hottest request there is, and the
  // file refuses any path of Latchkey's own, so nothing below is ever shadowed.
  const gateway = deps.gateway;
  if (gateway && deps.metrics) {
    // Counted as `gateway` when it serves the request; a path it does not know goes on.
    app.use((req: Request, res: Response, next: NextFunction) => {
      res.locals[ENDPOINT_LOCAL] = 'gateway';
      void gateway.handler(req, res, (err?: unknown) => {
        delete res.locals[ENDPOINT_LOCAL];
        next(err);
      });
    });
  } else if (gateway) app.use(gateway.handler);
  // The JSON endpoints, by exact path: a request goes straight to its router instead of being
  // offered to every router before it. The key follows Express's own matching:
  // case-insensitive, one trailing slash allowed.
  const { counters } = deps;
  const tokenSettings = { maxBodyBytes: limits.maxBodyBytes, requestsPerMinute: limits.tokenRequestsPerMinute, counters };
  const byPath = new Map<string, Router>([
    [ENDPOINTS.token.path, tokenRouter(ctx, deps.clients, tokenSettings)],
    [
      ENDPOINTS.introspection.path,
      introspectRouter(ctx, { secret: settings.introspectionSecret, maxBodyBytes: limits.maxBodyBytes, failuresPerMinute: limits.introspectionFailuresPerMinute, counters }),
    ],
    [
      ENDPOINTS.registration.path,
      registerRouter(
        { store: ctx.store, audit: ctx.audit, clock: ctx.clock, random: ctx.random, logger: ctx.logger, maxClients: limits.maxClients },
        { maxBodyBytes: limits.maxBodyBytes, registrationsPerHour: limits.registrationsPerHour, counters },
      ),
    ],
    [ENDPOINTS.revocation.path, revokeRouter(ctx, deps.clients, tokenSettings)],
  ]);
  app.use((req: Request, res: Response, next: NextFunction) => {
    const router = byPath.get(req.path) ?? byPath.get(req.path.toLowerCase().replace(/(.)\/$/, '$1'));
    if (router) router(req, res, next);
    else next();
  });
  app.use(
    infoRouter({
      metadata: authorizationServerMetadata(settings),
      stats: (insider) => serverStats(ctx.store, ctx.clock, { startedAt: deps.startedAt, version: deps.version }, insider),
      isInsider: resourceServerAuthenticator(settings.introspectionSecret),
      limitWrongSecret: jsonRateLimit(limits.introspectionFailuresPerMinute, 60_000, { counters, prefix: 'stats:' }),
      health: () => healthReport(deps.health),
    }),
  );
  const consentDeps = {
    ctx,
    clients: deps.clients,
    signer: deps.signer,
    pins: deps.pins,
    kv: deps.kv,
    trustedRedirectHosts: settings.redirects.trustedHosts,
    signIn: deps.signIn,
    signInFlow: deps.signInFlow,
  };
  app.use(consentRouter(consentDeps, { https: settings.https, authorizeRequestsPerMinute: limits.authorizeRequestsPerMinute, devices: deps.devices, counters }));
  app.use(
    signInRouter(consentDeps, {
      https: settings.https,
      authorizeRequestsPerMinute: limits.authorizeRequestsPerMinute,
      counters,
      adminSessions: deps.adminSessions,
      accountSessions: deps.accountSessions,
    }),
  );
  app.use(
    adminRouter({
      owner: deps.owner,
      sessions: deps.adminSessions,
      pins: deps.pins,
      devices: deps.devices,
      loginForms: deps.loginForms,
      clock: ctx.clock,
      random: ctx.random,
      logger: ctx.logger,
      issuer: settings.issuer,
      https: settings.https,
      idleTimeoutMs: settings.admin.idleTimeoutMs,
      signInFlow: deps.signInFlow,
      accessPolicy: ctx.accessPolicy,
    }),
  );
  app.use(
    accountRouter({
      owner: deps.owner,
      sessions: deps.accountSessions,
      signInFlow: deps.signInFlow,
      loginForms: deps.loginForms,
      clock: ctx.clock,
      random: ctx.random,
      logger: ctx.logger,
      https: settings.https,
    }),
  );
  app.use(ENDPOINTS.assets.path, express.static(path.join(deps.rootDir, 'public'), { maxAge: '1h', index: false }));

  app.use((req: Request, res: Response) => {
    res.status(404).json({ error: 'not_found', error_description: `Nothing at ${req.method} ${req.path}` });
  });
  // Last resort: never a stack trace, never a 500 for what a client sent.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // A read the store cannot serve now (/oauth/stats with the database down): retry later.
    if (isUnavailable(err) && !res.headersSent) return sendOAuthError(res, err, ctx.logger);
    const fault = clientFaultStatus(err);
    if (fault === undefined) ctx.logger.error({ err }, 'unhandled error');
    if (res.headersSent) return;
    res.status(fault ?? 500).json({
      error: fault !== undefined ? 'invalid_request' : 'server_error',
      error_description: fault !== undefined ? 'The request could not be processed' : 'The server hit an unexpected condition; try again',
    });
  });
  return app;
}

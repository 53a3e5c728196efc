import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { configurationLoaded, configurationReloaded, clientsDeleted } from './audit/audit-events.js';
import { AuditLog } from './audit/audit-log.js';
import { systemClock, type Clock } from './clock.js';
import { isLoopbackIssuer, type Config } from './config.js';
import { cryptoRandom, type RandomSource } from './crypto/secrets.js';
import { TokenSigner } from './crypto/signed-token.js';
import { baseEnvOf, createGateway, storeTokenVerifier, type Gateway, type ReloadReport } from './gateway/index.js';
import { createApp } from './http/app.js';
import { listenControl, type ControlSocket } from './control-socket.js';
import { createControlApp } from './http/control-routes.js';
import { createLoginProviders } from './identity/providers.js';
import { Metrics } from './metrics/metrics.js';
import { createMetadataFetcher } from './net/metadata-document-fetch.js';
import { FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES } from './oauth/client-metadata-document.js';
import { ClientResolver } from './oauth/client-resolver.js';
import { ConsentSigner } from './oauth/consent/consent-form.js';
import type { OAuthContext } from './oauth/context.js';
import { KnownDevices } from './oauth/known-devices.js';
import { hashedPinVerifier, kvFailureLog, PinGuard, plainPinVerifier } from './oauth/pin-guard.js';
import { offeredProviders, type SignInDeps } from './oauth/sign-in/sign-in-flow.js';
import { SignInStates } from './oauth/sign-in/sign-in-state.js';
import { ACCOUNT_SESSIONS, AdminSessions } from './owner/admin-sessions.js';
import { OwnerConsole } from './owner/owner-console.js';
import { serverStats } from './owner/server-status.js';
import type { FsOps } from './store/file/atomic-file.js';
import { lockDataDir } from './store/file/data-dir-lock.js';
import { observeBackend } from './store/observed-backend.js';
import { openBackend, type OpenedBackend } from './store/open-backend.js';
import { describeUrl } from './store/postgres/pool.js';
import type { LoadReport, Store } from './store/types.js';

/** The package root: where views/, public/ and package.json are, from src/ or dist/. */
export const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const VERSION: string = (JSON.parse(readFileSync(path.join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string }).version;

/** How long a consent page stays usable after it was shown. */
const CONSENT_PAGE_TTL_MS = 30 * 60_000;

export interface Services {
  app: Express;
  ctx: OAuthContext;
  store: Store;
  /** Everything the storage backend provides (store, key-value entries, counters, audit log). */
  backend: OpenedBackend;
  report: LoadReport;
  /** The PIN in force when it is known: OAUTH_PIN, or the one generated when neither
   * OAUTH_PIN nor OAUTH_PIN_HASH is set. Undefined with OAUTH_PIN_HASH. */
  pin: string | undefined;
  pinGenerated: boolean;
  /** Checks PIN attempts for the consent page and the owner's page alike. */
  pins: PinGuard;
  /** What the owner sees and does; also served to the `latchkey` command over the control socket. */
  owner: OwnerConsole;
  /** The control API (src/http/control-routes.ts). */
  control: Express;
  /** Deletes expired codes and tokens now. */
  cleanup(): Promise<void>;
  /** The MCP gateway, when OAUTH_GATEWAY_CONFIG is set. */
  gateway: Gateway | undefined;
  /**
   * SIGHUP: re-reads the gateway file and records the change in the audit log; undefined
   * without a gateway. A bad file rejects with a GatewayConfigError and changes nothing.
   */
  reloadGateway: (() => Promise<ReloadReport>) | undefined;
  /** What GET /metrics reports, when OAUTH_METRICS_TOKEN is set. */
  metrics: Metrics | undefined;
}

export interface ServiceOptions {
  clock?: Clock;
  random?: RandomSource;
  fs?: FsOps;
}

/** Opens the store and wires every part together; used by the daemon and by the tests. */
export async function createServices(config: Config, logger: Logger, options: ServiceOptions = {}): Promise<Services> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? cryptoRandom;
  const { backend, report } = await openBackend({
    dataDir: config.store.dataDir,
    logger,
    random,
    journalCompactBytes: config.store.journalCompactBytes,
    ...(config.store.databaseUrl !== undefined ? { databaseUrl: config.store.databaseUrl } : {}),
    ...(options.fs ? { fs: options.fs } : {}),
  });
  // With /metrics on, every storage operation is timed on its way through; otherwise the
  // parts are used as they are, at no cost.
  const metrics = config.metrics.token !== undefined ? new Metrics(backend.kind === 'postgres' ? { poolStats: () => backend.poolStats() } : {}) : undefined;
  const parts = metrics ? observeBackend(backend, metrics) : backend;
  const store = parts.store;
  let gateway: Gateway | undefined;
  try {
    gateway = await openGateway(config, store, clock, logger);
  } catch (err) {
    await backend.close();
    throw err;
  }
  // A getter: a gateway reload (SIGHUP) may change the resources tokens can be issued for.
  const resources = gateway ? (): readonly string[] => [...config.resources, ...(gateway?.resources() ?? [])] : (): readonly string[] => config.resources;
  const audit = new AuditLog(parts.audit, clock);
  const { identity } = config;
  const ctx: OAuthContext = {
    issuer: config.issuer,
    tokens: config.tokens,
    scopes: config.scopes,
    resources,
    store,
    accessPolicy: identity.policy,
    audit,
    clock,
    random,
    logger,
    ...(metrics ? { observer: metrics } : {}),
  };
  const source = config.pin.source;
  const pin = source.kind === 'plain' ? source.pin : source.kind === 'generate' ? String(randomInt(0, 100_000_000)).padStart(8, '0') : undefined;
  const verifier = source.kind === 'hash' ? hashedPinVerifier(source.hash) : plainPinVerifier(pin ?? '');
  // One key signs what Latchkey hands out and must recognise later: consent forms, known-device
  // cookies, owner's-page sign-in forms (each under its own purpose). The backend keeps it, so
  // every instance on one database shares it.
  const signingKey = await backend.consentKey();
  const signer = new ConsentSigner(signingKey, random, CONSENT_PAGE_TTL_MS);
  const devices = new KnownDevices(signingKey, random, parts.kv, clock);
  const pins = new PinGuard(verifier, clock, config.pin.maxFailuresPerHour, config.pin.maxAttemptsPerRequest, kvFailureLog(parts.kv), random, audit, metrics);
  const signInFlow: SignInDeps = {
    providers: await createLoginProviders(identity, { logger }),
    policy: identity.policy,
    issuer: config.issuer,
    states: new SignInStates(signingKey),
    kv: parts.kv,
    audit,
    clock,
    logger,
  };
  const { cimd } = config;
  const clients = new ClientResolver({
    store,
    kv: parts.kv,
    clock,
    logger,
    fetchDocument: cimd.enabled
      ? createMetadataFetcher({
          ...(cimd.caFile ? { ca: readFileSync(cimd.caFile, 'utf8') } : {}),
          allowPrivateAddresses: cimd.allowPrivateAddresses,
          timeoutMs: FETCH_TIMEOUT_MS,
          maxBytes: MAX_DOCUMENT_BYTES,
        })
      : undefined,
  });
  if (cimd.allowPrivateAddresses) {
    logger.warn('OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES is on: client metadata fetches may reach this network. Use it only in tests.');
  }
  const startedAt = clock.now();
  const owner = new OwnerConsole({
    store,
    audit,
    clock,
    logger,
    version: VERSION,
    startedAt,
    unlockPins: () => pins.unlock(),
    forgetDevices: () => devices.forgetAll(),
    health: () => backend.health(),
    gateway,
    ...(metrics ? { observer: metrics } : {}),
  });
  const app = createApp({
    settings: config,
    ctx,
    clients,
    counters: parts.counters,
    kv: parts.kv,
    health: () => backend.health(),
    signer,
    pins,
    devices,
    loginForms: new TokenSigner(signingKey, 'admin-login-form'),
    owner,
    adminSessions: new AdminSessions(parts.kv, clock, random, config.admin.idleTimeoutMs),
    accountSessions: new AdminSessions(parts.kv, clock, random, config.admin.idleTimeoutMs, ACCOUNT_SESSIONS),
    signIn: { pin: identity.login.includes('pin'), providers: offeredProviders(signInFlow) },
    signInFlow,
    version: VERSION,
    startedAt,
    rootDir: ROOT_DIR,
    gateway,
    metrics: metrics && config.metrics.token !== undefined ? { token: config.metrics.token, scrape: () => metrics.scrape(), observer: metrics } : undefined,
  });
  const cleanup = async (): Promise<void> => {
    const now = clock.now();
    const removed = await store.deleteExpired(now);
    if (removed.skipped) {
      logger.info('cleanup skipped: another instance is running it');
      return;
    }
    // Registration is open: clients that never completed an authorization go after
    // OAUTH_UNUSED_CLIENT_TTL, so a registration flood cannot fill the table for good. Approved
    // clients never expire (hosts cache their client_id for months).
    const unusedClients = await store.deleteUnusedClients(now - config.store.unusedClientTtlMs);
    if (unusedClients > 0) await audit.record(clientsDeleted({ count: unusedClients, actor: 'system', reason: 'unused' }));
    const auditEvents = await audit.prune(config.audit.retentionMs);
    logger.info({ removed, unusedClients, auditEvents }, 'expired codes and tokens deleted');
  };
  await audit.record(
    configurationLoaded({
      version: VERSION,
      issuer: config.issuer,
      signIn: identity.login,
      providers: signInFlow.providers.map((p) => `${p.id}: ${p.id === 'oidc' ? (identity.oidc?.issuer ?? '') : (identity.github?.url ?? '')}`),
      backend: backend.kind,
      allowListEntries: Object.values(identity.policy).reduce((n, list: string[]) => n + list.length, 0),
      owners: identity.policy.ownerEmails.length,
    }),
  );
  const control = createControlApp({ owner, stats: () => serverStats(store, clock, { startedAt, version: VERSION }, true), logger });
  const reloadGateway = gateway
    ? async (): Promise<ReloadReport> => {
        const changes = await gateway.reload();
        await audit.record(configurationReloaded(changes));
        return changes;
      }
    : undefined;
  return { app, ctx, store, backend, report, pin, pinGenerated: source.kind === 'generate', pins, owner, control, cleanup, gateway, reloadGateway, metrics };
}

export interface RunningDaemon {
  server: Server;
  services: Services;
  /** Stops accepting, lets in-flight requests finish, flushes the store. */
  shutdown(): Promise<void>;
}

export async function startDaemon(config: Config, logger: Logger): Promise<RunningDaemon> {
  const { dataDir } = config.store;
  const { port, host } = config.listen;
  const unlock = await lockDataDir(dataDir);
  let services: Services;
  let server: Server;
  try {
    services = await createServices(config, logger);
    const app = services.app;
    server = await new Promise<Server>((resolve, reject) => {
      // Express 5 passes listen errors (EADDRINUSE, EACCES) to this callback instead of
      // throwing; without the check the daemon would log "listening" and exit 0.
      const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
  } catch (err) {
    await unlock();
    throw err;
  }
  const { backend, report } = services;
  const address = server.address();
  const listen = typeof address === 'object' && address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);

  logger.info(
    { issuer: config.issuer, listen, dataDir: path.resolve(dataDir), loaded: report.counts, journal: report.journal, version: VERSION },
    `Latchkey ${VERSION} listening on ${listen} as issuer ${config.issuer}; ${
      config.store.databaseUrl === undefined
        ? `data in ${path.resolve(dataDir)}`
        : `state in PostgreSQL at ${describeUrl(config.store.databaseUrl)} (schema version ${report.migrations?.version ?? '?'})`
    } (loaded ${report.counts.clients} clients, ${report.counts.accessTokens} access tokens, ${report.counts.refreshTokens} refresh tokens, ${report.counts.codes} pending codes${
      report.journal.records > 0 ? `; ${report.journal.records} changes replayed from the journal after an unclean stop` : ''
    }${report.journal.tornRecords > 0 ? `; dropped ${report.journal.tornRecords} half-written record(s) a crash cut short, never acknowledged` : ''})`,
  );
  for (const aside of report.setAside) {
    logger.error(aside, `could not read ${aside.file}; it was kept as ${aside.movedTo}`);
  }
  if (!config.introspectionSecret && services.gateway) {
    // The gateway checks tokens in process: only servers using the resource-server kit need /introspect.
    logger.info('OAUTH_INTROSPECTION_SECRET is not set: /introspect is off; the gateway does not need it');
  } else if (!config.introspectionSecret) {
    logger.warn('OAUTH_INTROSPECTION_SECRET is not set: /introspect refuses every caller until you set it');
  }
  if (!config.https && !isLoopbackIssuer(config.issuer)) {
    logger.warn('OAUTH_ISSUER_URL is plain http on a public name: real clients require https');
  }

  let control: ControlSocket;
  try {
    control = await listenControl(services.control, config.store.controlSocket);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.backend.close();
    await unlock();
    throw err;
  }

  const timer = setInterval(() => {
    services.cleanup().catch((err: unknown) => logger.error({ err }, 'cleanup failed'));
  }, config.store.cleanupIntervalMs);
  timer.unref();

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(timer);
      const closed = new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      // Ends the gateway's child processes and its open streams, which would keep the server
      // open; the connections those streams leave idle are closed now, not at keep-alive timeout.
      await services.gateway?.close();
      server.closeIdleConnections();
      await closed;
      await control.close();
      await backend.close();
      await unlock();
      logger.info('Latchkey stopped; all changes are on disk');
    })());
  return { server, services, shutdown };
}

/** The MCP gateway of OAUTH_GATEWAY_CONFIG, or undefined when none is configured. */
async function openGateway(config: Config, store: Store, clock: Clock, logger: Logger): Promise<Gateway | undefined> {
  const { gateway } = config;
  if (gateway.configFile === undefined) return undefined;
  return createGateway({
    issuer: config.issuer,
    configFile: gateway.configFile,
    validScopes: config.scopes.valid,
    defaultScopes: config.scopes.defaults,
    logger,
    clock,
    verifyAccessToken: storeTokenVerifier(store, clock),
    // Children get their configured env plus PATH and HOME: never Latchkey's own variables.
    baseEnv: baseEnvOf(process.env),
    options: {
      stdioIdleMs: gateway.idleTimeoutMs,
      maxProcessesPerServer: gateway.maxProcessesPerServer,
      upstreamTimeoutMs: gateway.upstreamTimeoutMs,
    },
  });
}

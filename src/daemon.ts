import { randomInt } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import { isLoopbackIssuer, type Config } from './config.js';
import { loadConsentKey } from './consent-key.js';
import { cryptoRandom, type RandomSource } from './crypto/secrets.js';
import { TokenSigner } from './crypto/signed-token.js';
import { lockDataDir } from './data-dir-lock.js';
import { baseEnvOf, createGateway, storeTokenVerifier, type Gateway } from './gateway/index.js';
import { createApp } from './http/app.js';
import { createControlApp } from './http/control-routes.js';
import { createMetadataFetcher } from './net/metadata-document-fetch.js';
import { FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES } from './oauth/client-metadata-document.js';
import { ClientResolver } from './oauth/client-resolver.js';
import { ConsentSigner } from './oauth/consent/consent-form.js';
import type { OAuthContext } from './oauth/context.js';
import { KnownDevices } from './oauth/known-devices.js';
import { hashedPinVerifier, PinGuard, plainPinVerifier } from './oauth/pin-guard.js';
import { AdminSessions } from './owner/admin-sessions.js';
import { OwnerConsole } from './owner/owner-console.js';
import { serverStats } from './owner/server-status.js';
import type { FsOps } from './store/atomic-file.js';
import type { Store } from './store/types.js';
import { FileStore, type LoadReport } from './store/file-store.js';

/** The package root: where views/, public/ and package.json are, from src/ or dist/. */
export const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const VERSION: string = (JSON.parse(readFileSync(path.join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string }).version;

/** How long a consent page stays usable after it was shown. */
const CONSENT_PAGE_TTL_MS = 30 * 60_000;

export interface Services {
  app: Express;
  ctx: OAuthContext;
  store: FileStore;
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
  const { store, report } = await FileStore.open({
    dataDir: config.store.dataDir,
    logger,
    compactAfterBytes: config.store.journalCompactBytes,
    ...(options.fs ? { fs: options.fs } : {}),
  });
  let gateway: Gateway | undefined;
  try {
    gateway = await openGateway(config, store, clock, logger);
  } catch (err) {
    await store.close();
    throw err;
  }
  // A getter: a gateway reload (SIGHUP) may change the resources tokens can be issued for.
  const resources = gateway ? (): readonly string[] => [...config.resources, ...(gateway?.resources() ?? [])] : (): readonly string[] => config.resources;
  const ctx: OAuthContext = { issuer: config.issuer, tokens: config.tokens, scopes: config.scopes, resources, store, clock, random, logger };
  const source = config.pin.source;
  const pin = source.kind === 'plain' ? source.pin : source.kind === 'generate' ? String(randomInt(0, 100_000_000)).padStart(8, '0') : undefined;
  const verifier = source.kind === 'hash' ? hashedPinVerifier(source.hash) : plainPinVerifier(pin ?? '');
  // One key signs what Latchkey hands out and must recognise later: consent forms, known-device
  // cookies, owner's-page sign-in forms (each under its own purpose).
  const signingKey = await loadConsentKey(config.store.dataDir, random);
  const signer = new ConsentSigner(signingKey, random, CONSENT_PAGE_TTL_MS);
  const pins = new PinGuard(verifier, clock, config.pin.maxFailuresPerHour, config.pin.maxAttemptsPerRequest);
  const { cimd } = config;
  const clients = new ClientResolver({
    store,
    clock,
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
  const owner = new OwnerConsole({ store, clock, logger, version: VERSION, startedAt, unlockPins: () => pins.unlock(), gateway });
  const app = createApp({
    settings: config,
    ctx,
    clients,
    signer,
    pins,
    devices: new KnownDevices(signingKey, random),
    loginForms: new TokenSigner(signingKey, 'admin-login-form'),
    owner,
    adminSessions: new AdminSessions(clock, random, config.admin.idleTimeoutMs),
    version: VERSION,
    startedAt,
    rootDir: ROOT_DIR,
    gateway,
  });
  const cleanup = async (): Promise<void> => {
    const removed = await store.deleteExpired(clock.now());
    logger.info({ removed }, 'expired codes and tokens deleted');
  };
  const control = createControlApp({ owner, stats: () => serverStats(store, clock, { startedAt, version: VERSION }, true), logger });
  return { app, ctx, store, report, pin, pinGenerated: source.kind === 'generate', pins, owner, control, cleanup, gateway };
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
  const { store, report } = services;
  const address = server.address();
  const listen = typeof address === 'object' && address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);

  logger.info(
    { issuer: config.issuer, listen, dataDir: path.resolve(dataDir), loaded: report.counts, journal: report.journal, version: VERSION },
    `Latchkey ${VERSION} listening on ${listen} as issuer ${config.issuer}; data in ${path.resolve(dataDir)} (loaded ${report.counts.clients} clients, ${report.counts.accessTokens} access tokens, ${report.counts.refreshTokens} refresh tokens, ${report.counts.codes} pending codes${
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

  const control = await listenControl(services.control, config.store.controlSocket, logger);

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
      await control?.close();
      await store.close();
      await unlock();
      logger.info('Latchkey stopped; all changes are on disk');
    })());
  return { server, services, shutdown };
}

/**
 * Serves the control API on a Unix socket only the daemon's user can use (0600, inside the
 * 0700 data directory). A socket left by a killed daemon is replaced: the data-directory lock
 * proves no other daemon owns it. Without the socket the daemon still serves; the `latchkey`
 * commands that need it say so.
 */
export async function listenControl(app: Express, socketPath: string, logger: Logger): Promise<{ close(): Promise<void> } | undefined> {
  await fsp.unlink(socketPath).catch(() => undefined);
  const server = createServer(app);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    await fsp.chmod(socketPath, 0o600);
  } catch (err) {
    logger.warn({ socket: socketPath, reason: (err as Error).message }, 'no control socket: latchkey clients, revoke and unlock cannot reach this daemon (set OAUTH_CONTROL_SOCKET to a shorter path)');
    server.close();
    return undefined;
  }
  return {
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await fsp.unlink(socketPath).catch(() => undefined);
    },
  };
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

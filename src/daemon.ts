import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { createApp } from './http/app.js';
import { createMetadataFetcher } from './net/metadata-document-fetch.js';
import { FETCH_TIMEOUT_MS, MAX_DOCUMENT_BYTES } from './oauth/client-metadata-document.js';
import { ClientResolver } from './oauth/client-resolver.js';
import { ConsentSigner } from './oauth/consent.js';
import type { OAuthContext } from './oauth/context.js';
import { hashedPinVerifier, PinGuard, plainPinVerifier } from './oauth/pin-guard.js';
import { cryptoRandom, type RandomSource } from './oauth/secrets.js';
import type { FsOps } from './store/file/atomic-file.js';
import { lockDataDir } from './store/file/data-dir-lock.js';
import { openBackend, type OpenedBackend } from './store/open-backend.js';
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
  /** Deletes expired codes and tokens now. */
  cleanup(): Promise<void>;
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
    dataDir: config.dataDir,
    logger,
    random,
    journalCompactBytes: config.journalCompactBytes,
    ...(options.fs ? { fs: options.fs } : {}),
  });
  const store = backend.store;
  const ctx: OAuthContext = { config, store, clock, random, logger };
  const pinGenerated = config.pin === undefined && config.pinHash === undefined;
  const pin = pinGenerated ? String(randomInt(0, 100_000_000)).padStart(8, '0') : config.pin;
  const verifier = config.pinHash !== undefined ? hashedPinVerifier(config.pinHash) : plainPinVerifier(pin ?? '');
  const signer = new ConsentSigner(await backend.consentKey(), random, CONSENT_PAGE_TTL_MS);
  const pins = new PinGuard(verifier, clock, config.pinMaxFailuresPerHour, config.pinMaxAttemptsPerRequest);
  const clients = new ClientResolver({
    store,
    clock,
    fetchDocument: config.cimdEnabled
      ? createMetadataFetcher({
          ...(config.cimdCaFile ? { ca: readFileSync(config.cimdCaFile, 'utf8') } : {}),
          allowPrivateAddresses: config.cimdAllowPrivateAddresses,
          timeoutMs: FETCH_TIMEOUT_MS,
          maxBytes: MAX_DOCUMENT_BYTES,
        })
      : undefined,
  });
  if (config.cimdAllowPrivateAddresses) {
    logger.warn('OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES is on: client metadata fetches may reach this network. Use it only in tests.');
  }
  const app = createApp({ ctx, clients, signer, pins, version: VERSION, startedAt: clock.now(), rootDir: ROOT_DIR });
  const cleanup = async (): Promise<void> => {
    const removed = await store.deleteExpired(clock.now());
    logger.info({ removed }, 'expired codes and tokens deleted');
  };
  return { app, ctx, store, backend, report, pin, pinGenerated, pins, cleanup };
}

export interface RunningDaemon {
  server: Server;
  services: Services;
  /** Stops accepting, lets in-flight requests finish, flushes the store. */
  shutdown(): Promise<void>;
}

export async function startDaemon(config: Config, logger: Logger): Promise<RunningDaemon> {
  const unlock = await lockDataDir(config.dataDir);
  let services: Services;
  let server: Server;
  try {
    services = await createServices(config, logger);
    const app = services.app;
    server = await new Promise<Server>((resolve, reject) => {
      // Express 5 passes listen errors (EADDRINUSE, EACCES) to this callback instead of
      // throwing; without the check the daemon would log "listening" and exit 0.
      const s = app.listen(config.port, config.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    });
  } catch (err) {
    await unlock();
    throw err;
  }
  const { backend, report } = services;
  const address = server.address();
  const listen = typeof address === 'object' && address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);

  logger.info(
    { issuer: config.issuer, listen, dataDir: path.resolve(config.dataDir), loaded: report.counts, journal: report.journal, version: VERSION },
    `Latchkey ${VERSION} listening on ${listen} as issuer ${config.issuer}; data in ${path.resolve(config.dataDir)} (loaded ${report.counts.clients} clients, ${report.counts.accessTokens} access tokens, ${report.counts.refreshTokens} refresh tokens, ${report.counts.codes} pending codes${
      report.journal.records > 0 ? `; ${report.journal.records} changes replayed from the journal after an unclean stop` : ''
    }${report.journal.tornRecords > 0 ? `; dropped ${report.journal.tornRecords} half-written record(s) a crash cut short, never acknowledged` : ''})`,
  );
  for (const aside of report.setAside) {
    logger.error(aside, `could not read ${aside.file}; it was kept as ${aside.movedTo}`);
  }
  if (!config.introspectionSecret) {
    logger.warn('OAUTH_INTROSPECTION_SECRET is not set: /introspect refuses every caller until you set it');
  }
  if (config.issuer.startsWith('http:') && !/^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/.test(config.issuer)) {
    logger.warn('OAUTH_ISSUER_URL is plain http on a public name: real clients require https');
  }

  const timer = setInterval(() => {
    services.cleanup().catch((err: unknown) => logger.error({ err }, 'cleanup failed'));
  }, config.cleanupInterval * 1000);
  timer.unref();

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      clearInterval(timer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await backend.close();
      await unlock();
      logger.info('Latchkey stopped; all changes are on disk');
    })());
  return { server, services, shutdown };
}

/**
 * The server side of `npm run bench`, one process per scenario so the load generator never
 * shares a CPU-bound event loop with it. BENCH_MODE=w0 serves the bare Express ceiling;
 * BENCH_MODE=latchkey opens Latchkey on OAUTH_DATA_DIR, or on the PostgreSQL database of
 * OAUTH_DATABASE_URL (durable writes on, as in production), after filling the store, through
 * its own API, with what the scenario consumes; BENCH_PREPARE=0 skips the filling (a second
 * instance on a database the first one filled). Prints one JSON line with the port once it
 * listens.
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import inspector from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express from 'express';
import type { AccessTokenRecord } from '../src/store/types.js';
import { BENCH_REDIRECT, BENCH_VERIFIER } from './bench-shared.js';

// The server runs the built daemon from dist/, exactly what `npm start` runs (and where it
// finds package.json, views/ and public/), typed by the sources.
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const load = <T>(module: string): Promise<T> => import(pathToFileURL(path.join(DIST, module)).href) as Promise<T>;
const { loadConfig } = await load<typeof import('../src/config.js')>('config.js');
const { createServices } = await load<typeof import('../src/daemon.js')>('daemon.js');
const { createLogger } = await load<typeof import('../src/logger.js')>('logger.js');
const { registerClient } = await load<typeof import('../src/oauth/client-registration.js')>('oauth/client-registration.js');
const { cryptoRandom, hashSecret } = await load<typeof import('../src/crypto/secrets.js')>('crypto/secrets.js');


const env = process.env;
/** Preparation writes in flight at once. */
const PREPARE_AT_ONCE = 500;
const count = (name: string): number => Number(env[name] ?? '0');

/** With BENCH_CPU_PROF=<dir>, profiles the server from now until SIGINT, into <dir>. */
async function startProfile(): Promise<void> {
  const dir = env.BENCH_CPU_PROF;
  if (!dir) return;
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  process.removeAllListeners('SIGINT');
  process.on('SIGINT', () => {
    void session.post('Profiler.stop').then(async ({ profile }) => {
      await writeFile(path.join(dir, `${env.BENCH_MODE ?? 'server'}-${process.pid}.cpuprofile`), JSON.stringify(profile));
      process.exit(0);
    });
  });
}

function listen(app: express.Express): void {
  const server = app.listen(0, '127.0.0.1', () => {
    void startProfile().then(() => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
  });
}

async function latchkey(): Promise<void> {
  const config = loadConfig(env);
  const services = await createServices(config, createLogger('silent'));
  if (env.BENCH_PREPARE !== '0') await prepare(services, config);
  listen(services.app);
}

/** Fills the store with the client and what the scenario consumes. */
async function prepare(services: Awaited<ReturnType<typeof createServices>>, config: ReturnType<typeof loadConfig>): Promise<void> {
  const { store } = services;
  const now = Date.now();
  const { record } = registerClient(
    { client_name: 'bench', redirect_uris: [BENCH_REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
    now,
    cryptoRandom,
  );
  await store.putClient({ ...record, clientId: 'bench-client' });
  const token = (raw: string, grantId: string): AccessTokenRecord => ({
    hash: hashSecret(raw),
    clientId: 'bench-client',
    grantId,
    scopes: config.scopes.defaults,
    resource: config.resources[0] ?? config.issuer,
    issuedAt: now,
    expiresAt: now + 24 * 3_600_000,
  });
  const challenge = createHash('sha256').update(BENCH_VERIFIER).digest('base64url');
  const writes: (() => Promise<void>)[] = [];
  // Live tokens the store carries while the scenario runs (the 1k / 100k variants).
  for (let i = 0; i < count('BENCH_LIVE_TOKENS'); i++) writes.push(() => store.putTokens(token(`live-${i}`, `live-grant-${i}`), token(`live-refresh-${i}`, `live-grant-${i}`)));
  for (let i = 0; i < count('BENCH_CODES'); i++) {
    writes.push(() =>
      store.putCode({ ...token(`code-${i}`, `code-grant-${i}`), redirectUri: BENCH_REDIRECT, codeChallenge: challenge, expiresAt: now + 3_600_000 }),
    );
  }
  for (let i = 0; i < count('BENCH_REFRESH_TOKENS'); i++) writes.push(() => store.putTokens(token(`access-${i}`, `refresh-grant-${i}`), token(`refresh-${i}`, `refresh-grant-${i}`)));
  writes.push(() => store.putTokens(token('introspected', 'introspected-grant'), undefined));
  // A few hundred at a time: the files commit each group with one fsync, and PostgreSQL's pool
  // (10 connections, 5 s to get one) would refuse a queue of 150,000.
  for (let i = 0; i < writes.length; i += PREPARE_AT_ONCE) await Promise.all(writes.slice(i, i + PREPARE_AT_ONCE).map((write) => write()));
  // Fold the preparation into the snapshots now, so the measured window pays for the
  // compactions its own writes cause, not for those of the setup.
  if (services.backend.kind === 'files') await services.backend.store.compact();
}

function ceiling(): void {
  const app = express();
  app.disable('x-powered-by');
  app.post('/echo', express.urlencoded({ extended: false }), (_req, res) => {
    res.json({ ok: true });
  });
  listen(app);
}

// A clean exit on SIGINT, so `node --cpu-prof` writes its profile (BENCH_CPU_PROF).
process.on('SIGINT', () => process.exit(0));

if (env.BENCH_MODE === 'w0') ceiling();
else
  latchkey().catch((err: unknown) => {
    process.stderr.write(`bench-server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });

/**
 * The server side of `npm run bench`, one process per scenario so the load generator never
 * shares a CPU-bound event loop with it. BENCH_MODE=w0 serves the bare Express ceiling;
 * BENCH_MODE=latchkey opens Latchkey on OAUTH_DATA_DIR, or on the PostgreSQL database of
 * OAUTH_DATABASE_URL (durable writes on, as in production), after filling the store, through
 * its own API, with what the scenario consumes (and, with OAUTH_GATEWAY_CONFIG, an access
 * token `gateway-<name>` for each gateway server); BENCH_PREPARE=0 skips the filling (a second
 * instance on a database the first one filled). BENCH_MODE=mcp serves an MCP server with one
 * trivial tool, the upstream of the gateway rows, and BENCH_MODE=proxy a bare node:http proxy
 * to it, their reference. Prints one JSON line with the port once it listens.
 */
import { createHash, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import inspector from 'node:inspector/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
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
  // A gateway ends its stdio servers' process groups before the bench server goes.
  process.on('SIGTERM', () => {
    void (services.gateway?.close() ?? Promise.resolve()).then(() => process.exit(0));
  });
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
  const token = (raw: string, grantId: string, resource = config.resources[0] ?? config.issuer): AccessTokenRecord => ({
    hash: hashSecret(raw),
    clientId: 'bench-client',
    grantId,
    scopes: config.scopes.defaults,
    resource,
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
  for (const server of services.gateway?.status() ?? []) writes.push(() => store.putTokens(token(`gateway-${server.name}`, `gateway-grant-${server.name}`, server.resource), undefined));
  // A few hundred at a time: the files commit each group with one fsync, and PostgreSQL's pool
  // (10 connections, 5 s to get one) would refuse a queue of 150,000.
  for (let i = 0; i < writes.length; i += PREPARE_AT_ONCE) await Promise.all(writes.slice(i, i + PREPARE_AT_ONCE).map((write) => write()));
  // Fold the preparation into the snapshots now, so the measured window pays for the
  // compactions its own writes cause, not for those of the setup.
  if (services.backend.kind === 'files') await services.backend.store.compact();
}

/**
 * The upstream of the gateway rows: an MCP server on the SDK's Streamable HTTP transport, one
 * session (and one McpServer) per client, as the SDK's examples serve it, with one trivial
 * tool. BENCH_MCP_JSON=1 answers POSTs with JSON instead of an event stream.
 */
function mcpUpstream(): void {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json());
  app.all('/mcp', async (req, res) => {
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (!transport && req.method === 'POST' && isInitializeRequest(req.body)) {
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: env.BENCH_MCP_JSON === '1',
        onsessioninitialized: (sessionId) => void sessions.set(sessionId, created),
        onsessionclosed: (sessionId) => void sessions.delete(sessionId),
      });
      const server = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
      server.registerTool('echo', { description: 'Answers with its message', inputSchema: { message: z.string() } }, ({ message }) => ({
        content: [{ type: 'text', text: message }],
      }));
      await server.connect(created);
      transport = created;
    }
    if (!transport) {
      res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
      return;
    }
    await transport.handleRequest(req, res, req.body);
  });
  listen(app);
}

function ceiling(): void {
  const app = express();
  app.disable('x-powered-by');
  app.post('/echo', express.urlencoded({ extended: false }), (_req, res) => {
    res.json({ ok: true });
  });
  listen(app);
}

/**
 * The reference for the gateway rows: the least a proxy hop can do with node:http, requests
 * and answers piped through a keep-alive agent to 127.0.0.1:BENCH_UPSTREAM_PORT. No token
 * check, no header rules, no tool policy, no error handling: never for real use.
 */
function bareProxy(): void {
  const agent = new http.Agent({ keepAlive: true });
  const port = Number(env.BENCH_UPSTREAM_PORT);
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers, agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1', () => {
    void startProfile().then(() => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
  });
}

// A clean exit on SIGINT, so `node --cpu-prof` writes its profile (BENCH_CPU_PROF).
process.on('SIGINT', () => process.exit(0));

if (env.BENCH_MODE === 'w0') ceiling();
else if (env.BENCH_MODE === 'mcp') mcpUpstream();
else if (env.BENCH_MODE === 'proxy') bareProxy();
else
  latchkey().catch((err: unknown) => {
    process.stderr.write(`bench-server: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { MIGRATION_LOCK } from '../../src/store/postgres/migrate.js';
import { CLEANUP_LOCK } from '../../src/store/postgres/postgres-store.js';
import { DAEMON_ENTRY, Daemon, freePort } from '../e2e/daemon.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * Two real daemons (`node dist/index.js`) on one PostgreSQL, as behind a load balancer: every
 * step of a connection may land on either, and they agree on everything. Register on A, open
 * the consent page on A and approve it on B, exchange the code on A, refresh on B, revoke on A,
 * and B's introspection says inactive; a PIN lockout reached through A holds on B; an owner's
 * page session opened on A works on B; the cleanup runs on one instance at a time.
 */

const PIN = '46802468';
const SECRET = 'two-instances-introspection-secret-01';
const METRICS_TOKEN = 'two-instances-metrics-token-0123456';
const REDIRECT = 'https://claude.ai/api/mcp/auth_callback';

let db: TestPostgres;
let root: string;
let a: Daemon;
let b: Daemon;

beforeAll(async () => {
  db = await startTestPostgres();
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-two-'));
  const [portA, portB] = [await freePort(), await freePort()];
  // One public URL for both, as behind a load balancer or Cloudflare Tunnel replicas.
  const issuer = `http://127.0.0.1:${portA}`;
  const env = {
    OAUTH_DATABASE_URL: db.url,
    OAUTH_ISSUER_URL: issuer,
    OAUTH_PIN: PIN,
    OAUTH_INTROSPECTION_SECRET: SECRET,
    OAUTH_METRICS_TOKEN: METRICS_TOKEN,
    OAUTH_PIN_MAX_FAILURES_PER_HOUR: '3',
    // Both clean every second: only one may run it at a time.
    OAUTH_CLEANUP_INTERVAL: '1',
    LOG_LEVEL: 'info',
  };
  // Each instance has a data directory of its own (its pid lock and control socket); the state is in the database.
  a = new Daemon({ port: portA, dataDir: path.join(root, 'a'), cwd: root, env });
  b = new Daemon({ port: portB, dataDir: path.join(root, 'b'), cwd: root, env });
  await a.start();
  await b.start();
}, 180_000);

afterAll(async () => {
  await a?.kill();
  await b?.kill();
  await db?.close();
  await fsp.rm(root, { recursive: true, force: true });
}, 180_000);

/** Cookies as a browser keeps them: name → value, updated from each response. */
class Jar {
  private readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function send(daemon: Daemon, pathAndQuery: string, init: RequestInit & { form?: Record<string, string>; jar?: Jar } = {}): Promise<{ res: Response; text: string }> {
  const headers = new Headers(init.headers);
  if (init.jar) headers.set('cookie', init.jar.header());
  if (init.form) headers.set('content-type', 'application/x-www-form-urlencoded');
  const res = await fetch(`${daemon.baseUrl}${pathAndQuery}`, {
    ...init,
    headers,
    redirect: 'manual',
    ...(init.form ? { method: 'POST', body: new URLSearchParams(init.form).toString() } : {}),
  });
  init.jar?.take(res);
  return { res, text: await res.text() };
}

async function register(daemon: Daemon): Promise<string> {
  const { res, text } = await send(daemon, '/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'claudeai', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }),
  });
  expect(res.status).toBe(201);
  return (JSON.parse(text) as { client_id: string }).client_id;
}

/** GET /authorize on `daemon` as a browser: the signed consent field, with the CSRF cookie in `jar`. */
async function consentPage(daemon: Daemon, clientId: string, jar: Jar): Promise<{ consent: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT,
    state: 'st',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const { res, text } = await send(daemon, `/authorize?${query.toString()}`, { jar });
  expect(res.status).toBe(200);
  const consent = /name="consent" value="([^"]+)"/.exec(text)?.[1];
  if (!consent) throw new Error('no consent field');
  return { consent, verifier };
}

async function token(daemon: Daemon, form: Record<string, string>): Promise<{ status: number; body: Record<string, string> }> {
  const { res, text } = await send(daemon, '/token', { form });
  return { status: res.status, body: JSON.parse(text) as Record<string, string> };
}

async function active(daemon: Daemon, value: string): Promise<boolean> {
  const { text } = await send(daemon, '/introspect', { headers: { authorization: `Bearer ${SECRET}` }, form: { token: value } });
  return (JSON.parse(text) as { active: boolean }).active;
}

it('carries one connection across both instances: consent on A approved on B, code on A, refresh on B, revoke on A, inactive on B', async () => {
  const clientId = await register(a);
  const jar = new Jar();
  const page = await consentPage(a, clientId, jar);
  const approved = await send(b, '/authorize/consent', { jar, form: { consent: page.consent, pin: PIN, decision: 'approve' } });
  expect(approved.res.status).toBe(303);
  const code = new URL(approved.res.headers.get('location') ?? '').searchParams.get('code');
  expect(code).toBeTruthy();

  const issued = await token(a, { grant_type: 'authorization_code', code: code ?? '', redirect_uri: REDIRECT, code_verifier: page.verifier, client_id: clientId });
  expect(issued.status).toBe(200);
  // The code is spent for both: B refuses it too.
  expect((await token(b, { grant_type: 'authorization_code', code: code ?? '', redirect_uri: REDIRECT, code_verifier: page.verifier, client_id: clientId })).status).toBe(400);

  // That replay revoked the grant (RFC 9700 §4.5): start a fresh one for the rest.
  const page2 = await consentPage(a, clientId, jar);
  const approved2 = await send(b, '/authorize/consent', { jar, form: { consent: page2.consent, pin: PIN, decision: 'approve' } });
  const code2 = new URL(approved2.res.headers.get('location') ?? '').searchParams.get('code') ?? '';
  const first = await token(a, { grant_type: 'authorization_code', code: code2, redirect_uri: REDIRECT, code_verifier: page2.verifier, client_id: clientId });
  expect(first.status).toBe(200);
  expect(await active(b, first.body.access_token ?? '')).toBe(true);

  const refreshed = await token(b, { grant_type: 'refresh_token', refresh_token: first.body.refresh_token ?? '', client_id: clientId });
  expect(refreshed.status).toBe(200);
  expect(await active(a, refreshed.body.access_token ?? '')).toBe(true);

  const revoked = await send(a, '/revoke', { form: { token: refreshed.body.refresh_token ?? '', client_id: clientId } });
  expect(revoked.res.status).toBe(200);
  expect(await active(b, refreshed.body.access_token ?? '')).toBe(false);
  expect(await active(b, first.body.access_token ?? '')).toBe(false);
  expect((await token(b, { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token ?? '', client_id: clientId })).status).toBe(400);
});

it('an owner’s page session opened on A works on B, and signing out on B ends it on A', async () => {
  const jar = new Jar();
  const login = await send(a, '/admin', { jar });
  const form = /name="csrf" value="([^"]+)"/.exec(login.text)?.[1] ?? '';
  const signedIn = await send(a, '/admin/login', { jar, form: { csrf: form, pin: PIN } });
  expect(signedIn.res.status).toBe(303);
  const onB = await send(b, '/admin', { jar });
  expect(onB.res.status).toBe(200);
  expect(onB.text).toContain('action="/admin/logout"');
  const csrf = /name="csrf" value="([^"]+)"/.exec(onB.text)?.[1] ?? '';
  expect((await send(b, '/admin/logout', { jar, form: { csrf } })).res.status).toBe(303);
  const onA = await send(a, '/admin', { jar });
  expect(onA.text).toContain('action="/admin/login"');
});

it('a PIN lockout reached through A holds on B', async () => {
  const clientId = await register(a);
  let last = 0;
  for (let i = 0; i < 3; i++) {
    const jar = new Jar();
    const page = await consentPage(a, clientId, jar);
    last = (await send(a, '/authorize/consent', { jar, form: { consent: page.consent, pin: '11112222', decision: 'approve' } })).res.status;
  }
  expect(last).toBe(429);
  // The right PIN, from another browser, on the other instance: still paused.
  const jar = new Jar();
  const page = await consentPage(b, clientId, jar);
  const onB = await send(b, '/authorize/consent', { jar, form: { consent: page.consent, pin: PIN, decision: 'approve' } });
  expect(onB.res.status).toBe(429);
  expect(onB.res.headers.get('retry-after')).toMatch(/^\d+$/);
});

it('runs the cleanup on one instance at a time', async () => {
  const locker = new pg.Client({ connectionString: db.url });
  const client = new pg.Client({ connectionString: db.url });
  await locker.connect();
  await client.connect();
  const left = async (): Promise<number> => (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM access_tokens WHERE hash LIKE 'expired-%'")).rows[0]?.n ?? -1;
  try {
    // A session of ours holds the cleanup lock, as an instance in the middle of its cleanup would.
    await locker.query('BEGIN');
    await locker.query('SELECT pg_advisory_xact_lock($1)', [CLEANUP_LOCK]);
    const now = Date.now();
    for (let i = 0; i < 50; i++) {
      await client.query(
        `INSERT INTO access_tokens (hash, client_id, grant_id, scopes, resource, issued_at, expires_at) VALUES ($1, 'c', $2, '{mcp}', 'https://x', $3, $4)`,
        [`expired-${i}`, `g-${i}`, now - 7_200_000, now - 3_600_000],
      );
    }
    const skippedBefore = { a: skips(a), b: skips(b) };
    // Each instance's next round sees the lock taken and skips; the expired rows stay.
    await waitFor(() => skips(a) > skippedBefore.a && skips(b) > skippedBefore.b);
    expect(await left()).toBe(50);
    const deletedBefore = deleted(a) + deleted(b);
    await locker.query('COMMIT');
    // Released: the next round deletes them, each row once.
    await waitFor(async () => (await left()) === 0);
    await waitFor(() => deleted(a) + deleted(b) - deletedBefore >= 50);
    expect(deleted(a) + deleted(b) - deletedBefore).toBe(50);
  } finally {
    await locker.end();
    await client.end();
  }
}, 60_000);

it('a third instance stopped (SIGTERM) while it waits for another’s migrations finishes starting, then stops cleanly', async () => {
  // Another instance migrating, as far as the third can tell: the migration lock is held.
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  await locker.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  const port = await freePort();
  const third = spawn(process.execPath, [DAEMON_ENTRY], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: root, PORT: String(port), HOST: '127.0.0.1', OAUTH_DATA_DIR: path.join(root, 'c'), OAUTH_DATABASE_URL: db.url, OAUTH_PIN: PIN, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  third.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  third.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => third.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    // It waits on the lock: its signal handlers are in place, it does not listen yet.
    await waitFor(async () => {
      const { rows } = await locker.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = 'latchkey'",
      );
      return (rows[0]?.n ?? 0) > 0;
    });
    third.kill('SIGTERM');
    await locker.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(output).toContain('"signal":"SIGTERM","msg":"shutting down: finishing requests in flight"');
    expect(output).toContain('Latchkey stopped');
  } finally {
    third.kill('SIGKILL');
    await locker.end();
  }
}, 60_000);

it('reports the database pool and the store’s round trips at /metrics on each instance', async () => {
  for (const daemon of [a, b]) {
    const { res, text } = await send(daemon, '/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(text).toMatch(/^latchkey_database_pool_connections\{state="idle"\} \d+$/m);
    expect(text).toMatch(/^latchkey_database_pool_connections\{state="in_use"\} \d+$/m);
    expect(text).toMatch(/^latchkey_database_pool_waiting \d+$/m);
    expect(text).toMatch(/^latchkey_store_operation_duration_seconds_count\{backend="postgres",operation="store.getAccessToken"\} [1-9]\d*$/m);
  }
});

/** The lines a daemon logged, parsed. */
function logLines(daemon: Daemon): { msg?: string; removed?: { accessTokens?: number } }[] {
  return daemon
    .log()
    .split('\n')
    .map((l) => l.replace(/^\[run \d+ \w+\] /, ''))
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; removed?: { accessTokens?: number } });
}
const skips = (daemon: Daemon): number => logLines(daemon).filter((l) => l.msg === 'cleanup skipped: another instance is running it').length;
const deleted = (daemon: Daemon): number => logLines(daemon).reduce((n, l) => n + (l.msg === 'expired codes and tokens deleted' ? (l.removed?.accessTokens ?? 0) : 0), 0);

/** Polls `condition` until it holds (the daemons clean every second); fails after a generous minute. */
async function waitFor(condition: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 50_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not reached:\n${a.log().slice(-3000)}\n${b.log().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

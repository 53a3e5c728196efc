import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { startHarness, http, introspect, obtainTokens, refresh, register, INTROSPECTION_SECRET, PIN, type Harness, type RegisteredClient, type TokenBody } from '../helpers/http-harness.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * Reads that meet a failing PostgreSQL (the server stopped: connections refused) answer 503
 * with Retry-After, never 500: the statistics, the owner's page, the consent page's client
 * lookup, introspection, the gateway's token check, the control API. Every one of them works
 * again once the server is back, with no restart of Latchkey.
 */

const METRICS_TOKEN = 'metrics-token-for-the-outage-test';

let db: TestPostgres;
let h: Harness;
let work: string;
let client: RegisteredClient;
let tokens: TokenBody;
let adminCookie: string;

/** The server is the test's own ({ own: true }), so it can be stopped and started. */
const stopOrFail = async (server: TestPostgres): Promise<void> => {
  if (!server.stop) throw new Error('an outage needs a server the tests started');
  await server.stop();
};
const startOrFail = async (server: TestPostgres): Promise<void> => {
  if (!server.start) throw new Error('an outage needs a server the tests started');
  await server.start();
};

const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

beforeAll(async () => {
  db = await startTestPostgres({ own: true });
  work = mkdtempSync(path.join(tmpdir(), 'latchkey-outage-'));
  const gatewayFile = path.join(work, 'gateway.json');
  // The upstream is never reached: the token check comes first.
  writeFileSync(gatewayFile, JSON.stringify({ mcpServers: { notes: { url: 'http://127.0.0.1:9/mcp' } } }));
  h = await startHarness({ OAUTH_DATABASE_URL: db.url, OAUTH_GATEWAY_CONFIG: gatewayFile, OAUTH_METRICS_TOKEN: METRICS_TOKEN });
  client = await register(h);
  tokens = await obtainTokens(h, client);
  // The harness's issuer is https: the cookies are Secure, so they are carried by hand.
  const form = csrfOf((await http(h).get('/admin')).text);
  const login = await http(h).post('/admin/login').set('Cookie', `__Host-latchkey_admin_login=${form}`).type('form').send({ csrf: form, pin: PIN });
  adminCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-latchkey_admin='))?.split(';')[0] ?? '';
  expect(adminCookie).not.toBe('');
}, 180_000);

afterAll(async () => {
  await h?.close();
  await db?.close();
  rmSync(work, { recursive: true, force: true });
}, 180_000);

/** Each read, as a request: what it answers while the database is down, and once it is back. */
const READS: { name: string; send: () => Promise<request.Response>; up: number }[] = [
  { name: 'GET /oauth/stats', send: () => http(h).get('/oauth/stats'), up: 200 },
  {
    name: 'GET /oauth/stats as an insider',
    send: () => http(h).get('/oauth/stats').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`),
    up: 200,
  },
  { name: 'GET /admin (a signed-in owner)', send: () => http(h).get('/admin').set('Cookie', adminCookie), up: 200 },
  {
    name: 'GET /authorize (the client lookup)',
    send: () =>
      http(h)
        .get('/authorize')
        .query({ response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uris[0] ?? '', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's' }),
    up: 200,
  },
  {
    name: 'POST /introspect',
    send: () => http(h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({ token: tokens.access_token }),
    up: 200,
  },
  {
    name: 'POST /notes/mcp (the gateway token check)',
    send: () => http(h).post('/notes/mcp').set('Authorization', 'Bearer some-token').set('Content-Type', 'application/json').send({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    // Up again, this token is unknown: the gateway's 401, not an outage.
    up: 401,
  },
  { name: 'control API GET /v1/stats', send: () => request(h.services.control).get('/v1/stats'), up: 200 },
  { name: 'control API GET /v1/clients', send: () => request(h.services.control).get('/v1/clients'), up: 200 },
];

describe('PostgreSQL down', () => {
  beforeAll(async () => {
    await stopOrFail(db);
  }, 180_000);

  it.each(READS.map((r) => [r.name, r] as const))('%s answers 503 with Retry-After, never 500', async (_name, read) => {
    const res = await read.send();
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.headers['cache-control']).toBe('no-store');
    // Never a stack trace, a host name or the driver's message.
    expect(res.text).not.toMatch(/\n\s+at |ECONNREFUSED|127\.0\.0\.1|postgres:/);
  });

  it('state changes answer 503 too, as the RFC error temporarily_unavailable', async () => {
    const res = await refresh(h, client, tokens.refresh_token ?? '');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toMatch(/^\d+$/);
    expect(res.body).toMatchObject({ error: 'temporarily_unavailable' });
    const registration = await http(h).post('/register').send({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], token_endpoint_auth_method: 'none' });
    expect(registration.status).toBe(503);
  });

  it('/metrics keeps answering (it needs no database) and counts the failed store operations', async () => {
    const res = await http(h).get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`);
    expect(res.status).toBe(200);
    const failures = [...res.text.matchAll(/^latchkey_store_operation_errors_total\{backend="postgres",operation="[^"]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    expect(failures.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('/healthz says why', async () => {
    const res = await http(h).get('/healthz');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ status: 'error', store: 'database unreachable' });
  });
});

describe('PostgreSQL back', () => {
  beforeAll(async () => {
    await startOrFail(db);
  }, 180_000);

  it.each(READS.map((r) => [r.name, r] as const))('%s works again without a restart', async (_name, read) => {
    expect((await read.send()).status).toBe(read.up);
  });

  it('the tokens issued before the outage still work', async () => {
    expect((await introspect(h, tokens.access_token)).active).toBe(true);
    expect((await refresh(h, client, tokens.refresh_token ?? '')).status).toBe(200);
    expect((await http(h).get('/healthz')).body).toEqual({ status: 'ok' });
  });
});

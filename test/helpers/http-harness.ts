import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import request, { type Response } from 'supertest';
import { FakeClock } from './fake-clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createServices, type ServiceOptions, type Services } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';

/**
 * Shared setup for the supertest tests: a daemon's services on a temp data directory, a
 * clock that moves only when told, and the browser steps of the consent page.
 */

export const ISSUER = 'https://auth.example.com';
export const RESOURCE = 'https://mcp.example.com/mcp';
export const OTHER_RESOURCE = 'https://tools.example.com';
export const PIN = '24681357';
export const INTROSPECTION_SECRET = 'introspection-secret-for-tests-0123';
/** The harness's issuer is https, so every cookie carries the __Host- prefix. */
export const CSRF_COOKIE = '__Host-latchkey_csrf';

import { BODIES } from '../fixtures/host-registrations.js';

export { BODIES };

export { FakeClock };

/** What one response looked like, kept to check that nothing ever leaks a 5xx or a stack. */
interface Recorded {
  method: string;
  url: string;
  status: number;
  body: string;
}

export interface Harness {
  /** A request listener that forwards to the current services' app (it survives restarts). */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  services: Services;
  config: Config;
  clock: FakeClock;
  dir: string;
  /** Closes the store and opens new services on the same data directory: a daemon restart. */
  restart(): Promise<void>;
  /** Throws if any response so far was a 5xx or contained a stack trace. */
  assertNoServerErrors(): void;
  close(): Promise<void>;
}

export function testConfig(dir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    OAUTH_DATA_DIR: dir,
    OAUTH_ISSUER_URL: ISSUER,
    OAUTH_PIN: PIN,
    OAUTH_VALID_SCOPES: 'read write admin',
    OAUTH_DEFAULT_SCOPES: 'read',
    OAUTH_RESOURCES: `${RESOURCE},${OTHER_RESOURCE}`,
    OAUTH_INTROSPECTION_SECRET: INTROSPECTION_SECRET,
    OAUTH_REGISTRATION_RATE_LIMIT: '1000',
    LOG_LEVEL: 'silent',
    ...env,
  });
}

const STACK_TRACE = /\n\s+at .+:\d+:\d+|node:internal|node_modules\/|\/src\/.+\.ts/;

/** Log lines as JSON objects, for tests that check what is logged. */
export interface LogCapture {
  lines: Record<string, unknown>[];
}

/**
 * `options.fs` wraps the store's filesystem calls, for disk-fault tests; `options.logs`
 * collects the log at info level (with the real redaction) instead of discarding it.
 */
export async function startHarness(env: Record<string, string> = {}, options: Pick<ServiceOptions, 'fs'> & { logs?: LogCapture } = {}): Promise<Harness> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-http-'));
  const config = testConfig(dir, env);
  const clock = new FakeClock();
  const capture = options.logs;
  const logger = capture
    ? createLogger('info', { write: (line: string) => void capture.lines.push(JSON.parse(line) as Record<string, unknown>) })
    : pino({ level: 'silent' });
  const recorded: Recorded[] = [];
  const serviceOptions: ServiceOptions = { clock, ...(options.fs ? { fs: options.fs } : {}) };
  let services = await createServices(config, logger, serviceOptions);

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    const keep = (chunk: unknown): void => {
      if (typeof chunk === 'string') chunks.push(Buffer.from(chunk));
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.write = ((...args: unknown[]) => {
      keep(args[0]);
      return write(...args);
    }) as ServerResponse['write'];
    res.end = ((...args: unknown[]) => {
      if (typeof args[0] !== 'function') keep(args[0]);
      recorded.push({
        method: req.method ?? '',
        url: req.url ?? '',
        status: res.statusCode,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      return end(...args);
    }) as ServerResponse['end'];
    services.app(req, res);
  };

  const harness: Harness = {
    handler,
    services,
    config,
    clock,
    dir,
    async restart() {
      await services.backend.close();
      services = await createServices(config, logger, serviceOptions);
      harness.services = services;
    },
    assertNoServerErrors() {
      const bad = recorded.filter((r) => r.status >= 500 || STACK_TRACE.test(r.body));
      if (bad.length > 0) {
        throw new Error(`server error or stack trace in: ${bad.map((r) => `${r.method} ${r.url} → ${r.status} ${r.body.slice(0, 300)}`).join('\n')}`);
      }
    },
    async close() {
      await services.backend.close();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

export interface HarnessScope {
  /** The harness of the current test, with the default configuration. */
  readonly h: Harness;
  /** Another harness with its own configuration, closed and checked after the test too. */
  start(env: Record<string, string>): Promise<Harness>;
}

/**
 * Registers beforeEach/afterEach: a fresh harness per test, and after each test every
 * harness it used is closed and checked for 5xx responses and stack traces.
 */
export function useHarness(env: Record<string, string> = {}): HarnessScope {
  const open: Harness[] = [];
  let current: Harness | undefined;
  beforeEach(async () => {
    current = await startHarness(env);
    open.push(current);
  });
  afterEach(async () => {
    const all = open.splice(0);
    current = undefined;
    await Promise.all(all.map((x) => x.close()));
    for (const x of all) x.assertNoServerErrors();
  });
  return {
    get h(): Harness {
      if (!current) throw new Error('no harness outside a test');
      return current;
    },
    async start(custom: Record<string, string>): Promise<Harness> {
      const x = await startHarness({ ...env, ...custom });
      open.push(x);
      return x;
    },
  };
}

/** A supertest request builder on the harness. */
export const http = (h: Harness): ReturnType<typeof request> => request(h.handler);

// ---- registration -------------------------------------------------------------------------

export interface RegisteredClient {
  client_id: string;
  client_secret?: string;
  client_id_issued_at: number;
  client_secret_expires_at?: number;
  redirect_uris: string[];
  token_endpoint_auth_method: string;
  grant_types: string[];
  response_types: string[];
  client_name?: string;
  scope?: string;
  [key: string]: unknown;
}

export async function register(h: Harness, body: object = BODIES.claude): Promise<RegisteredClient> {
  const res = await http(h).post('/register').send(body);
  if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${res.text}`);
  return res.body as RegisteredClient;
}

// ---- PKCE and authorization -----------------------------------------------------------------

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface AuthorizeOptions {
  redirectUri?: string;
  state?: string;
  scope?: string;
  resource?: string;
  pkce?: Pkce;
  /** Extra or overriding query parameters; undefined removes one. */
  query?: Record<string, string | undefined>;
}

export function authorizeQuery(client: RegisteredClient, opts: AuthorizeOptions = {}): Record<string, string> {
  const p = opts.pkce ?? pkce();
  const query: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: opts.redirectUri ?? client.redirect_uris[0],
    state: opts.state ?? 'state-123',
    code_challenge: p.challenge,
    code_challenge_method: 'S256',
    scope: opts.scope,
    resource: opts.resource,
    ...opts.query,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) if (v !== undefined) out[k] = v;
  return out;
}

export interface ConsentPage {
  res: Response;
  csrf: string;
  consent: string;
}

/** GET /authorize as a browser: returns the page, its CSRF cookie and the signed consent field. */
export async function openConsent(h: Harness, client: RegisteredClient, opts: AuthorizeOptions = {}, cookie?: string): Promise<ConsentPage> {
  let req = http(h).get('/authorize').query(authorizeQuery(client, opts));
  if (cookie) req = req.set('Cookie', `${CSRF_COOKIE}=${cookie}`);
  const res = await req;
  if (res.status !== 200) throw new Error(`consent page failed: ${res.status} ${res.text} ${String(res.headers.location)}`);
  return { res, csrf: cookie ?? csrfFrom(res), consent: consentField(res.text) };
}

export function csrfFrom(res: Response): string {
  const cookies = ([] as string[]).concat((res.headers['set-cookie'] as string[] | string | undefined) ?? []);
  for (const c of cookies) {
    const m = new RegExp(`^${CSRF_COOKIE}=([^;]+)`).exec(c);
    if (m?.[1]) return m[1];
  }
  throw new Error('no CSRF cookie set');
}

export function consentField(html: string): string {
  const m = /<input type="hidden" name="consent" value="([^"]+)">/.exec(html);
  if (!m?.[1]) throw new Error('no consent field in the page');
  return m[1];
}

export interface ConsentPost {
  consent?: string;
  csrf?: string;
  pin?: string;
  decision?: string;
}

export async function postConsent(h: Harness, post: ConsentPost): Promise<Response> {
  const form: Record<string, string> = {};
  if (post.consent !== undefined) form.consent = post.consent;
  if (post.pin !== undefined) form.pin = post.pin;
  if (post.decision !== undefined) form.decision = post.decision;
  let req = http(h).post('/authorize/consent').type('form');
  if (post.csrf !== undefined) req = req.set('Cookie', `${CSRF_COOKIE}=${post.csrf}`);
  return req.send(form);
}

/** The query of a redirect back to the client. */
export function redirectParams(res: Response): URLSearchParams {
  const location = res.headers.location as string | undefined;
  if (!location) throw new Error(`expected a redirect, got ${res.status} ${res.text.slice(0, 200)}`);
  return new URL(location).searchParams;
}

export interface Approval {
  code: string;
  state: string | null;
  iss: string | null;
  location: string;
  verifier: string;
  redirectUri: string;
}

/** The whole browser part: consent page, PIN, approve; returns the code from the redirect. */
export async function approve(h: Harness, client: RegisteredClient, opts: AuthorizeOptions = {}): Promise<Approval> {
  const p = opts.pkce ?? pkce();
  const page = await openConsent(h, client, { ...opts, pkce: p });
  const res = await postConsent(h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
  if (res.status !== 303) throw new Error(`approval failed: ${res.status} ${res.text.slice(0, 300)}`);
  const q = redirectParams(res);
  const code = q.get('code');
  if (!code) throw new Error(`no code in ${String(res.headers.location)}`);
  return {
    code,
    state: q.get('state'),
    iss: q.get('iss'),
    location: res.headers.location as string,
    verifier: p.verifier,
    redirectUri: opts.redirectUri ?? client.redirect_uris[0] ?? '',
  };
}

// ---- token endpoint -----------------------------------------------------------------------

export interface TokenBody {
  access_token: string;
  token_type: string;
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

export function basicAuth(clientId: string, secret: string): string {
  const enc = (s: string): string => encodeURIComponent(s);
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

/** POSTs a form to /token (or /revoke), authenticating as the client registered. */
export async function postAs(
  h: Harness,
  endpoint: '/token' | '/revoke',
  client: RegisteredClient,
  form: Record<string, string>,
): Promise<Response> {
  let req = http(h).post(endpoint).type('form');
  const body: Record<string, string> = { ...form };
  if (client.token_endpoint_auth_method === 'client_secret_basic') {
    req = req.set('Authorization', basicAuth(client.client_id, client.client_secret ?? ''));
  } else {
    body.client_id = client.client_id;
    if (client.token_endpoint_auth_method === 'client_secret_post') body.client_secret = client.client_secret ?? '';
  }
  return req.send(body);
}

export async function exchange(h: Harness, client: RegisteredClient, approval: Approval, extra: Record<string, string> = {}): Promise<Response> {
  return postAs(h, '/token', client, {
    grant_type: 'authorization_code',
    code: approval.code,
    redirect_uri: approval.redirectUri,
    code_verifier: approval.verifier,
    ...extra,
  });
}

export async function refresh(h: Harness, client: RegisteredClient, refreshToken: string, extra: Record<string, string> = {}): Promise<Response> {
  return postAs(h, '/token', client, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra });
}

/** Register-free shortcut: approve and exchange, returning the token response. */
export async function obtainTokens(h: Harness, client: RegisteredClient, opts: AuthorizeOptions = {}): Promise<TokenBody & { approval: Approval }> {
  const approval = await approve(h, client, opts);
  const res = await exchange(h, client, approval);
  if (res.status !== 200) throw new Error(`code exchange failed: ${res.status} ${res.text}`);
  return { ...(res.body as TokenBody), approval };
}

export interface IntrospectionBody {
  active: boolean;
  client_id?: string;
  scope?: string;
  aud?: string;
  iss?: string;
  exp?: number;
  iat?: number;
  token_type?: string;
}

export async function introspect(h: Harness, token: string): Promise<IntrospectionBody> {
  const res = await http(h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({ token });
  if (res.status !== 200) throw new Error(`introspection failed: ${res.status} ${res.text}`);
  return res.body as IntrospectionBody;
}

/** Every key of a JSON value, recursively, whose value is null. */
export function nullPaths(value: unknown, at = '$'): string[] {
  if (value === null) return [at];
  if (Array.isArray(value)) return value.flatMap((v, i) => nullPaths(v, `${at}[${i}]`));
  if (typeof value === 'object') return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => nullPaths(v, `${at}.${k}`));
  return [];
}

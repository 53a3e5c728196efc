/**
 * Client ID Metadata Documents through Latchkey's HTTP endpoints: a local HTTPS server serves
 * the documents with a certificate made here and trusted through OAUTH_CIMD_CA_FILE.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { createServices, type ServiceOptions, type Services } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';
import { MAX_FETCHES_PER_HOST_PER_MINUTE } from '../../src/oauth/client-resolver.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { approveHeadlessly } from '../e2e/helpers/headless-consent.js';
import { freePort } from '../e2e/helpers/processes.js';
import { json, startHttpsFixture, type HttpsFixture } from './https-fixture.js';

const PIN = '97531864';
let fixture: HttpsFixture;
let dir: string;
const running: { services: Services; server: Server }[] = [];
/** Requests that reached the fixture under /budget/, the host the budget test floods. */
let budgetHits = 0;
const FLOOD = MAX_FETCHES_PER_HOST_PER_MINUTE + 5;

const doc = (id: string, overrides: Record<string, unknown> = {}) => ({
  client_id: id,
  client_name: 'Claude Code',
  redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  ...overrides,
});

async function startLatchkey(env: Record<string, string>, options: ServiceOptions = {}): Promise<string> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    PORT: String(port),
    OAUTH_ISSUER_URL: issuer,
    OAUTH_PIN: PIN,
    OAUTH_DATA_DIR: mkdtempSync(path.join(dir, 'data-')),
    OAUTH_CIMD_CA_FILE: path.join(dir, 'ca.pem'),
    ...env,
  });
  const services = await createServices(config, createLogger('silent'), options);
  const server = await new Promise<Server>((resolve) => {
    const s = services.app.listen(port, '127.0.0.1', () => resolve(s));
  });
  running.push({ services, server });
  return issuer;
}

let issuer: string;
let strictIssuer: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-cimd-'));
  const url = (p: string) => `https://localhost:${fixture.port}${p}`;
  fixture = await startHttpsFixture({
    '/clients/good.json': (req, res) => json(doc(url('/clients/good.json')), { 'cache-control': 'max-age=3600' })(req, res),
    '/clients/mismatch.json': (req, res) => json(doc('https://evil.example.com/client.json'))(req, res),
    '/clients/big.json': (req, res) => json(doc(url('/clients/big.json'), { client_name: 'x'.repeat(900), contacts: Array(10).fill('y'.repeat(500)) }))(req, res),
    '/clients/redirect.json': (_req, res) => res.writeHead(302, { location: '/clients/good.json' }).end(),
    '/clients/bad.json': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"client_id":'),
    '/clients/secret.json': (req, res) => json(doc(url('/clients/secret.json'), { token_endpoint_auth_method: 'client_secret_basic' }))(req, res),
    ...Object.fromEntries(
      ['known', ...Array.from({ length: FLOOD }, (_, i) => `c${i}`)].map((name) => [
        `/budget/${name}.json`,
        (req: IncomingMessage, res: ServerResponse) => {
          budgetHits++;
          json(doc(url(`/budget/${name}.json`)), { 'cache-control': 'max-age=0' })(req, res);
        },
      ]),
    ),
  });
  writeFileSync(path.join(dir, 'ca.pem'), fixture.caPem);
  issuer = await startLatchkey({ OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES: 'true' });
  strictIssuer = await startLatchkey({});
});

afterAll(async () => {
  for (const { services, server } of running) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.backend.close();
  }
  await fixture.close();
  rmSync(dir, { recursive: true, force: true });
});

function authorizeUrl(base: string, clientId: string, redirectUri: string, challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'): URL {
  const u = new URL(`${base}/authorize`);
  u.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'st',
  }).toString();
  return u;
}

async function tokenWith(base: string, clientId: string, params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: clientId, ...params }).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function postForm(base: string, endpoint: '/token' | '/revoke', params: Record<string, string>): Promise<{ status: number; error: unknown; retryAfter: string | null }> {
  const res = await fetch(`${base}${endpoint}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params).toString(),
  });
  const body = (await res.json()) as Record<string, unknown>;
  return { status: res.status, error: body.error, retryAfter: res.headers.get('retry-after') };
}

describe('Client ID Metadata Documents', () => {
  it('advertises support only when enabled', async () => {
    const on = (await (await fetch(`${issuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(on.client_id_metadata_document_supported).toBe(true);
    const offIssuer = await startLatchkey({ OAUTH_CIMD_ENABLED: 'false' });
    const off = (await (await fetch(`${offIssuer}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(off).not.toHaveProperty('client_id_metadata_document_supported');
  });

  it('authorizes a URL client_id: consent shows the document host, loopback port rule, token and refresh', async () => {
    const clientId = fixture.url('/clients/good.json');
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const redirectUri = 'http://localhost:49152/callback';
    const url = authorizeUrl(issuer, clientId, redirectUri, challenge);

    const page = await (await fetch(url)).text();
    expect(page).toContain(`localhost:${fixture.port}`);
    expect(page).toContain('identifies itself by a document');

    const back = await approveHeadlessly(url, PIN);
    expect(back.get('iss')).toBe(issuer);
    const code = back.get('code') ?? '';
    const tokens = await tokenWith(issuer, clientId, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri });
    expect(tokens.status).toBe(200);
    const refreshed = await tokenWith(issuer, clientId, { grant_type: 'refresh_token', refresh_token: String(tokens.body.refresh_token) });
    expect(refreshed.status).toBe(200);
  });

  it.each([
    ['mismatched client_id', '/clients/mismatch.json', 'is not the URL it was fetched from'],
    ['oversize document', '/clients/big.json', 'larger than 5120 bytes'],
    ['redirect', '/clients/redirect.json', 'redirects are not followed'],
    ['bad JSON', '/clients/bad.json', 'not valid JSON'],
    ['unsupported auth method', '/clients/secret.json', 'only &#34;none&#34; is'],
    ['missing document', '/clients/none.json', 'HTTP 404'],
  ])('%s: an error page at /authorize and invalid_client at /token, never a 500', async (_name, docPath, message) => {
    const clientId = fixture.url(docPath);
    const res = await fetch(authorizeUrl(issuer, clientId, 'http://localhost:49152/callback'), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain(message);

    const token = await tokenWith(issuer, clientId, { grant_type: 'authorization_code', code: 'x', code_verifier: 'y'.repeat(43) });
    expect(token).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
  });

  it('a redirect URI missing from the document is refused on a page, without redirecting', async () => {
    const res = await fetch(authorizeUrl(issuer, fixture.url('/clients/good.json'), 'https://attacker.example.com/callback'), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('Redirect URI not registered');
  });

  it('a private address is refused when the test-only setting is off', async () => {
    const clientId = fixture.url('/clients/good.json');
    const res = await fetch(authorizeUrl(strictIssuer, clientId, 'http://localhost:49152/callback'), { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('private, loopback or link-local');
    const token = await tokenWith(strictIssuer, clientId, { grant_type: 'authorization_code', code: 'x', code_verifier: 'y'.repeat(43) });
    expect(token).toEqual({ status: 401, body: expect.objectContaining({ error: 'invalid_client' }) });
  });
});

describe('the fetch budget, over HTTP', () => {
  it(`lets at most ${MAX_FETCHES_PER_HOST_PER_MINUTE} fetches a minute reach one host however many URLs /token names; the rest get 503 temporarily_unavailable, and a known client is never invalid_client`, async () => {
    const clock = new FakeClock();
    // Its own Latchkey: the other tests spend the budget of the fixture's host on theirs.
    const base = await startLatchkey({ OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES: 'true' }, { clock });
    const bogusCode = { grant_type: 'authorization_code', code: 'x', code_verifier: 'y'.repeat(43) };
    const known = fixture.url('/budget/known.json');
    // The client is known: its document was fetched and was good. It says max-age=0, so after
    // the minute's floor the next lookup would fetch it again.
    expect(await postForm(base, '/token', { client_id: known, ...bogusCode })).toMatchObject({ status: 400, error: 'invalid_grant' });
    expect(budgetHits).toBe(1);
    clock.advance(61_000);

    const answers = [];
    for (let i = 0; i < FLOOD; i++) answers.push(await postForm(base, '/token', { client_id: fixture.url(`/budget/c${i}.json`), ...bogusCode }));
    expect(budgetHits).toBe(1 + MAX_FETCHES_PER_HOST_PER_MINUTE);
    // The first ten were fetched and found (the code is what is wrong); the rest never reached the host.
    expect(answers.slice(0, MAX_FETCHES_PER_HOST_PER_MINUTE).map((a) => a.error)).toEqual(Array(MAX_FETCHES_PER_HOST_PER_MINUTE).fill('invalid_grant'));
    for (const refused of answers.slice(MAX_FETCHES_PER_HOST_PER_MINUTE)) {
      expect(refused).toEqual({ status: 503, error: 'temporarily_unavailable', retryAfter: expect.stringMatching(/^\d+$/) });
    }
    expect(await postForm(base, '/revoke', { client_id: fixture.url(`/budget/c${FLOOD - 1}.json`), token: 'x' })).toMatchObject({ status: 503, error: 'temporarily_unavailable' });

    // The known client's cached copy has run out and the host's budget is spent: its last good
    // copy serves, at /token and /revoke, without a fetch.
    expect(await postForm(base, '/token', { client_id: known, ...bogusCode })).toMatchObject({ status: 400, error: 'invalid_grant' });
    expect(await postForm(base, '/revoke', { client_id: known, token: 'x' })).toMatchObject({ status: 200 });
    expect(budgetHits).toBe(1 + MAX_FETCHES_PER_HOST_PER_MINUTE);

    // A minute later the host's budget is back.
    clock.advance(60_000);
    expect(await postForm(base, '/token', { client_id: fixture.url(`/budget/c${FLOOD - 1}.json`), ...bogusCode })).toMatchObject({ status: 400, error: 'invalid_grant' });
    expect(budgetHits).toBe(2 + MAX_FETCHES_PER_HOST_PER_MINUTE);
  });
});

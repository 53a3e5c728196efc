import { existsSync, promises as fsp } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as client from 'openid-client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { runCli } from '../../src/cli/run.js';
import { IntrospectionTokenVerifier } from '../../src/resource-server/index.js';
import { captureIo } from '../helpers/cli-io.js';
import { startGithubStandin, type GithubStandin } from '../helpers/github-standin.js';
import { LOGIN_FORM } from '../helpers/login-by-fetch.js';
import { startOidcIdp, type IdpAccount, type OidcIdp } from '../helpers/oidc-idp.js';
import { Daemon, freePort } from './daemon.js';
import type { AuditEvent } from '../../src/store/types.js';

/**
 * Issue 12, end to end: the REAL daemon (dist/index.js, a child process), panva's
 * oidc-provider as the identity provider, the GitHub stand-in, Chromium as the person's
 * browser, and openid-client as the connector. The whole chain (connector → Latchkey →
 * provider login → back → consent naming the person → code → token → introspection shows
 * the person), with Latchkey restarted between every step; then every refusal, each a page
 * of Latchkey's and nothing else; then the audit log: each event once, no secret in it or in
 * the log, and still there after kill -9.
 */

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) process.stderr.write(`\n[skipped] sign-in browser test: ${CHROMIUM} is missing; .ci/run installs Debian's chromium\n\n`);

const PIN = '80461357';
const INTROSPECTION_SECRET = 'e2e-sign-in-introspection-secret-0123';
const IDP_SECRET = 'e2e-sign-in-oidc-client-secret-0123456789';
const GITHUB_SECRET = 'e2e-sign-in-github-client-secret-0123';
const ACCOUNTS: IdpAccount[] = [
  { id: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' },
  { id: 'mallory', email: 'mallory@elsewhere.example', email_verified: true, name: 'Mallory' },
];

let tmpRoot: string;
let dataDir: string;
let port: number;
let daemon: Daemon;
let env: Record<string, string>;
let idp: OidcIdp;
let github: GithubStandin;
let connectorCallback: Server;
let redirectUri: string;
let resource: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
/** What came back to the connector's redirect URI, in order. */
const arrivals: URL[] = [];
/** Every secret the test saw: none may appear in the audit log or in Latchkey's output. */
const secrets = new Set<string>([PIN, INTROSPECTION_SECRET, IDP_SECRET, GITHUB_SECRET]);
/** Daemon starts, each of which records config.loaded once. */
let starts = 0;

const connector = {
  clientId: '',
  verifier: '',
  state: '',
  accessToken: '',
  refreshToken: '',
};

const discoveryOptions: client.DiscoveryRequestOptions = { algorithm: 'oauth2', execute: [client.allowInsecureRequests], timeout: 10 };
const issuerUrl = (): URL => new URL(daemon.baseUrl);
const connectorConfig = (): Promise<client.Configuration> => client.discovery(issuerUrl(), connector.clientId, undefined, client.None(), discoveryOptions);
const subject = (account: string): string => `oidc:127.0.0.1:${idp.port}:${account}`;

function daemonEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    OAUTH_PIN: PIN,
    OAUTH_INTROSPECTION_SECRET: INTROSPECTION_SECRET,
    OAUTH_RESOURCES: resource,
    OAUTH_VALID_SCOPES: 'mcp',
    OAUTH_OIDC_ISSUER: idp.issuer,
    OAUTH_OIDC_CLIENT_ID: 'latchkey',
    OAUTH_OIDC_CLIENT_SECRET: IDP_SECRET,
    OAUTH_OIDC_NAME: 'Test IdP',
    OAUTH_GITHUB_CLIENT_ID: 'Iv1.e2e',
    OAUTH_GITHUB_CLIENT_SECRET: GITHUB_SECRET,
    OAUTH_GITHUB_URL: github.url,
    OAUTH_GITHUB_API_URL: github.apiUrl,
    OAUTH_ALLOWED_EMAILS: 'alice@example.com',
    OAUTH_ALLOWED_GITHUB_USERS: 'octocat',
    OAUTH_LOGIN: 'oidc,github',
    OAUTH_PIN_MAX_FAILURES_PER_HOUR: '2',
    OAUTH_REFRESH_REUSE_GRACE: '0',
    // Info: every request line and event is written, and all of it is grepped for secrets.
    LOG_LEVEL: 'info',
    ...overrides,
  };
}

/** A daemon on the same port and data directory; a new environment is a new configuration. */
async function startDaemon(overrides: Record<string, string> = {}): Promise<void> {
  env = daemonEnv(overrides);
  const previous = daemon?.output ?? [];
  daemon = new Daemon({ port, dataDir, cwd: tmpRoot, env });
  daemon.output.push(...previous);
  await daemon.start();
  starts++;
}

/** SIGTERM (exit 0), then the same daemon again: nothing may be lost. */
async function restart(overrides?: Record<string, string>): Promise<void> {
  expect(await daemon.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  await startDaemon(overrides ?? {});
}

async function introspect(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${daemon.baseUrl}/introspect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INTROSPECTION_SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return (await res.json()) as Record<string, unknown>;
}

/** A fresh browser profile: the provider's own session must not sign the next person in silently. */
async function freshBrowser(): Promise<void> {
  await context?.close();
  context = await browser.newContext();
  page = await context.newPage();
  page.setDefaultTimeout(30_000);
}

/** The connector starts an authorization: PKCE S256, state, the resource. */
async function authorizationUrl(): Promise<string> {
  connector.verifier = client.randomPKCECodeVerifier();
  connector.state = client.randomState();
  secrets.add(connector.verifier).add(connector.state);
  const url = client.buildAuthorizationUrl(await connectorConfig(), {
    redirect_uri: redirectUri,
    scope: 'mcp',
    resource,
    state: connector.state,
    code_challenge: await client.calculatePKCECodeChallenge(connector.verifier),
    code_challenge_method: 'S256',
  });
  return url.href;
}

const onLatchkey = (): boolean => page.url().startsWith(`${daemon.baseUrl}/`);
const heading = async (): Promise<string> => (await page.getByRole('heading', { level: 1 }).textContent()) ?? '';

/** Every cookie value the browser holds now: cookies are secrets too. */
async function collectCookies(): Promise<void> {
  for (const c of await context.cookies()) if (c.value.length >= 16) secrets.add(c.value);
}

/** From the consent page: press "Continue with <label>", sign in at the provider as `login`, and land back on Latchkey. */
async function signInAt(label: string, login: string, between?: () => Promise<void>): Promise<string> {
  await page.getByRole('button', { name: `Continue with ${label}` }).click();
  await page.locator(LOGIN_FORM.login).waitFor();
  await collectCookies();
  await between?.();
  await page.fill(LOGIN_FORM.login, login);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(`${daemon.baseUrl}/login/callback/`)), page.click(LOGIN_FORM.approve)]);
  const back = page.url();
  const url = new URL(back);
  for (const name of ['code', 'state']) secrets.add(url.searchParams.get(name) ?? '');
  return back;
}

beforeAll(async () => {
  if (!available) return;
  tmpRoot = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-e2e-sign-in-'));
  dataDir = path.join(tmpRoot, 'data');
  port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  resource = `http://127.0.0.1:${await freePort()}/mcp`;
  connectorCallback = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/callback') arrivals.push(new URL(req.url ?? '/', redirectUri));
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>Connector</title><p>Back at the connector</p>');
  });
  await new Promise<void>((resolve) => connectorCallback.listen(0, '127.0.0.1', () => resolve()));
  redirectUri = `http://127.0.0.1:${(connectorCallback.address() as AddressInfo).port}/callback`;
  idp = await startOidcIdp({ accounts: ACCOUNTS, clients: [{ clientId: 'latchkey', clientSecret: IDP_SECRET, redirectUris: [`${base}/login/callback/oidc`] }] });
  github = await startGithubStandin({
    users: [{ id: 583231, login: 'octocat', name: 'The Octocat', emails: [{ email: 'octocat@github.com', verified: true, primary: true }] }],
    apps: [{ clientId: 'Iv1.e2e', clientSecret: GITHUB_SECRET, callbackUrl: `${base}/login/callback/github` }],
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await startDaemon();
  await freshBrowser();
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await daemon?.kill();
  await idp?.stop();
  await github?.stop();
  connectorCallback?.closeAllConnections();
  await new Promise<void>((resolve) => (connectorCallback ? connectorCallback.close(() => resolve()) : resolve()));
  if (tmpRoot) await fsp.rm(tmpRoot, { recursive: true, force: true });
});

(available ? describe : describe.skip)('sign-in with a provider, through the real daemon, in Chromium', () => {
  let failed = false;
  /** Steps depend on each other: after a failure, say so once and print the daemon's output. */
  const step = (name: string, fn: () => Promise<void>): void => {
    test(name, async () => {
      if (failed) throw new Error('an earlier step failed');
      try {
        await fn();
      } catch (err) {
        failed = true;
        process.stderr.write(`\n--- daemon output ---\n${daemon.log().slice(-20_000)}\n---------------------\n`);
        throw err;
      }
    });
  };

  let aliceCallback = '';
  let aliceSignInCookie = '';

  step('the connector registers (RFC 7591) with openid-client', async () => {
    const registered = await client.dynamicClientRegistration(
      issuerUrl(),
      { client_name: 'E2E Connector', redirect_uris: [redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' },
      client.None(),
      discoveryOptions,
    );
    connector.clientId = registered.clientMetadata().client_id;
    await restart();
  });

  step('the consent page offers both providers and no PIN', async () => {
    await page.goto(await authorizationUrl());
    expect(await heading()).toContain('Allow E2E Connector to connect?');
    await expect(page.getByRole('button', { name: 'Continue with Test IdP' }).count()).resolves.toBe(1);
    await expect(page.getByRole('button', { name: 'Continue with GitHub' }).count()).resolves.toBe(1);
    await expect(page.locator('input[name="pin"]').count()).resolves.toBe(0);
    await restart();
  });

  step('Continue → the provider\'s sign-in page → back at Latchkey, which names the person (restarts while at the provider)', async () => {
    aliceCallback = await signInAt('Test IdP', 'alice', async () => {
      aliceSignInCookie = (await context.cookies()).find((c) => c.name === 'latchkey_signin')?.value ?? '';
      expect(aliceSignInCookie).not.toBe('');
      await restart();
    });
    expect(await heading()).toBe('Allow E2E Connector to use ' + resource.replace('http://', '') + ' as alice@example.com?');
    await expect(page.locator('input[name="pin"]').count()).resolves.toBe(0);
    await restart();
  });

  step('Approve → the code goes back to the connector with state and iss', async () => {
    await collectCookies();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Approve' }).click()]);
    const arrived = arrivals[arrivals.length - 1];
    expect(arrived?.searchParams.get('state')).toBe(connector.state);
    expect(arrived?.searchParams.get('iss')).toBe(daemon.baseUrl);
    secrets.add(arrived?.searchParams.get('code') ?? '');
    await restart();
  });

  step('code → token, with PKCE, by openid-client', async () => {
    const arrived = arrivals[arrivals.length - 1] as URL;
    const tokens = await client.authorizationCodeGrant(await connectorConfig(), arrived, { pkceCodeVerifier: connector.verifier, expectedState: connector.state }, { resource });
    connector.accessToken = tokens.access_token;
    connector.refreshToken = tokens.refresh_token ?? '';
    secrets.add(connector.accessToken).add(connector.refreshToken);
    await restart();
  });

  step('introspection shows the person; so does the resource-server kit', async () => {
    expect(await introspect(connector.accessToken)).toMatchObject({ active: true, client_id: connector.clientId, sub: subject('alice'), username: 'alice@example.com', aud: resource });
    const verifier = new IntrospectionTokenVerifier({ issuer: daemon.baseUrl, resource, introspectionSecret: INTROSPECTION_SECRET });
    const info = await verifier.verifyAccessToken(connector.accessToken);
    expect(info.extra).toEqual({ sub: subject('alice'), username: 'alice@example.com', iss: daemon.baseUrl });
    await restart();
  });

  step('a replayed callback, cookie and all, gets a page: its state was claimed once', async () => {
    await context.addCookies([{ name: 'latchkey_signin', value: aliceSignInCookie, url: daemon.baseUrl }]);
    const res = await page.goto(aliceCallback);
    expect(res?.status()).toBe(400);
    expect(onLatchkey()).toBe(true);
    expect(await heading()).toBe('Sign-in did not work');
    await expect(page.getByText('This sign-in was already used').count()).resolves.toBe(1);
  });

  step('refresh keeps the person; removed from the list, the next refresh gets invalid_grant and the grant is gone', async () => {
    const refreshed = await client.refreshTokenGrant(await connectorConfig(), connector.refreshToken, { resource });
    secrets.add(refreshed.access_token).add(refreshed.refresh_token ?? '');
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true, sub: subject('alice') });
    // The owner takes alice off the list and restarts Latchkey.
    await restart({ OAUTH_ALLOWED_EMAILS: 'bob@example.com' });
    const refused = await client.refreshTokenGrant(await connectorConfig(), refreshed.refresh_token ?? '', { resource }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(client.ResponseBodyError);
    expect((refused as client.ResponseBodyError).error).toBe('invalid_grant');
    expect(await introspect(refreshed.access_token)).toEqual({ active: false });
    await restart();
  });

  /** A new authorization in a fresh browser, up to the provider's sign-in and back. */
  async function refusedAfterSignIn(account: string, expected: string): Promise<void> {
    await freshBrowser();
    const before = arrivals.length;
    await page.goto(await authorizationUrl());
    await signInAt('Test IdP', account);
    expect(onLatchkey()).toBe(true);
    expect(await heading()).toMatch(/cannot connect|did not work/);
    await expect(page.getByText(expected).count()).resolves.toBeGreaterThan(0);
    expect(arrivals.length).toBe(before);
    await restart();
  }

  step('a person off the list is refused with a page', async () => {
    await refusedAfterSignIn('mallory', 'mallory@elsewhere.example is not on the list of people allowed to connect');
  });

  step('an ID token with the wrong nonce is refused with a page', async () => {
    idp.tamperIdTokens({ claims: (c) => ({ ...c, nonce: 'a-nonce-latchkey-never-sent' }) });
    try {
      await refusedAfterSignIn('alice', 'sent an identity Latchkey could not verify');
    } finally {
      idp.tamperIdTokens(undefined);
    }
  });

  step('an ID token signed by another key is refused with a page', async () => {
    idp.tamperIdTokens({ key: 'foreign' });
    try {
      await refusedAfterSignIn('alice', 'sent an identity Latchkey could not verify');
    } finally {
      idp.tamperIdTokens(undefined);
    }
  });

  step('the provider unreachable: Latchkey starts anyway, the button answers with a page; back, it works again', async () => {
    const idpPort = idp.port;
    await idp.stop();
    await restart();
    await freshBrowser();
    await page.goto(await authorizationUrl());
    const [response] = await Promise.all([page.waitForResponse((r) => r.url().startsWith(`${daemon.baseUrl}/login/start/oidc`)), page.getByRole('button', { name: 'Continue with Test IdP' }).click()]);
    expect(response.status()).toBe(503);
    expect(onLatchkey()).toBe(true);
    await expect(page.getByText('Test IdP cannot be reached right now').count()).resolves.toBe(1);
    idp = await startOidcIdp({ port: idpPort, accounts: ACCOUNTS, clients: [{ clientId: 'latchkey', clientSecret: IDP_SECRET, redirectUris: [`${daemon.baseUrl}/login/callback/oidc`] }] });
    await restart();
  });

  step('GitHub through the daemon against the stand-in: the person is github:<id>, by their verified primary address', async () => {
    await freshBrowser();
    await page.goto(await authorizationUrl());
    await signInAt('GitHub', 'octocat', () => restart());
    expect(await heading()).toContain('as octocat@github.com?');
    await restart();
    await collectCookies();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Approve' }).click()]);
    const arrived = arrivals[arrivals.length - 1] as URL;
    secrets.add(arrived.searchParams.get('code') ?? '');
    await restart();
    const tokens = await client.authorizationCodeGrant(await connectorConfig(), arrived, { pkceCodeVerifier: connector.verifier, expectedState: connector.state }, { resource });
    secrets.add(tokens.access_token).add(tokens.refresh_token ?? '');
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, sub: 'github:583231', username: 'octocat@github.com' });
    // The same code again: replay, and the grant it started is revoked.
    await expect(client.authorizationCodeGrant(await connectorConfig(), arrived, { pkceCodeVerifier: connector.verifier, expectedState: connector.state }, { resource })).rejects.toBeInstanceOf(
      client.ResponseBodyError,
    );
    expect(await introspect(tokens.access_token)).toEqual({ active: false });
  });

  step('Deny after signing in, and wrong PINs on /admin until the lockout', async () => {
    await freshBrowser();
    await page.goto(await authorizationUrl());
    await signInAt('GitHub', 'octocat');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Deny' }).click()]);
    expect(arrivals[arrivals.length - 1]?.searchParams.get('error')).toBe('access_denied');
    for (const wrong of ['11111111', '22222222']) {
      await page.goto(`${daemon.baseUrl}/admin`);
      await page.getByLabel('Your PIN').fill(wrong);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    }
    await expect(page.getByRole('heading', { name: 'Too many wrong PINs' }).count()).resolves.toBe(1);
    await collectCookies();
  });

  step('the owner deletes the connector with latchkey clients delete (over the control socket)', async () => {
    const io = captureIo({ env: { ...env, OAUTH_DATA_DIR: dataDir, PORT: String(port) }, cwd: tmpRoot });
    expect(await runCli(['clients', 'delete', connector.clientId], io)).toBe(0);
  });

  type Event = AuditEvent;

  async function auditFiles(): Promise<{ text: string; events: Event[] }> {
    const dir = path.join(dataDir, 'audit');
    let text = '';
    for (const f of (await fsp.readdir(dir)).sort()) text += await fsp.readFile(path.join(dir, f), 'utf8');
    return { text, events: text.trim().split('\n').map((l) => JSON.parse(l) as Event) };
  }

  step('the audit log has each event once, and no secret is in it or in the log', async () => {
    const { text, events } = await auditFiles();
    const count = (type: string, match: (e: Event) => boolean = () => true): number => events.filter((e) => e.type === type && match(e)).length;
    const reason = (r: string) => (e: Event): boolean => e.detail?.reason === r;
    expect(count('config.loaded')).toBe(starts);
    expect(events.find((e) => e.type === 'config.loaded')?.detail).toMatchObject({ signIn: ['oidc', 'github'], backend: 'files', providers: [`oidc: ${idp.issuer}`, `github: ${github.url}`] });
    expect(count('client.registered', (e) => e.clientId === connector.clientId)).toBe(1);
    expect(count('signin.succeeded', (e) => e.subject === subject('alice'))).toBe(1);
    expect(count('signin.succeeded', (e) => e.subject === 'github:583231')).toBe(2);
    expect(count('signin.failed', reason('not-allowed'))).toBe(1);
    expect(count('signin.failed', reason('invalid-id-token'))).toBe(2);
    expect(count('signin.failed', reason('state-mismatch'))).toBe(1);
    expect(count('signin.failed', reason('provider-unreachable'))).toBe(1);
    expect(count('consent.approved', (e) => e.subject === subject('alice') && e.clientId === connector.clientId)).toBe(1);
    expect(count('consent.approved', (e) => e.subject === 'github:583231')).toBe(1);
    expect(count('consent.denied', (e) => e.subject === 'github:583231')).toBe(1);
    expect(count('pin.failed', (e) => e.ip === '127.0.0.1' && e.detail?.purpose === 'admin')).toBe(2);
    expect(count('pin.locked')).toBe(1);
    expect(count('grant.revoked', reason('allow-list-removal'))).toBe(1);
    expect(count('grant.revoked', reason('code-replay'))).toBe(1);
    expect(count('client.deleted', (e) => e.clientId === connector.clientId && e.actor === 'cli')).toBe(1);
    expect(events.find((e) => e.type === 'grant.revoked' && e.detail?.reason === 'allow-list-removal')).toMatchObject({ actor: 'system', subject: subject('alice'), detail: { email: 'alice@example.com' } });

    const output = daemon.log();
    expect(output.length).toBeGreaterThan(1000);
    const found = [...secrets].filter((s) => s.length >= 8).filter((s) => text.includes(s) || output.includes(s));
    expect(found).toEqual([]);
    expect(secrets.size).toBeGreaterThan(15);
  });

  step('the audit log survives kill -9, and latchkey audit prints it', async () => {
    const before = (await auditFiles()).events.length;
    const killed = await daemon.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    await startDaemon();
    const io = captureIo({ env: { ...env, OAUTH_DATA_DIR: dataDir, PORT: String(port) }, cwd: tmpRoot });
    expect(await runCli(['audit', '--json'], io)).toBe(0);
    const printed = io.stdout.join('').trim().split('\n').map((l) => JSON.parse(l) as Event);
    // Everything acknowledged before the kill, and the new start.
    expect(printed.length).toBe(before + 1);
    expect(printed[printed.length - 1]?.type).toBe('config.loaded');
    expect(printed.filter((e) => e.type === 'consent.approved').length).toBe(2);
    const text = captureIo({ env: { ...env, OAUTH_DATA_DIR: dataDir, PORT: String(port) }, cwd: tmpRoot });
    expect(await runCli(['audit', '--since', '1h'], text)).toBe(0);
    expect(text.stdout.join('')).toContain('alice@example.com approved "E2E Connector" for mcp');
  });
});

import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startApp, type RunningApp } from '../helpers/running-app.js';

/**
 * The consent page and the owner's page in a real browser: Debian's Chromium driven by
 * playwright-core. Run with UPDATE_SCREENSHOTS=1 to refresh docs/consent.png and docs/admin.png.
 */
const CHROMIUM = '/usr/bin/chromium';
const PIN = '582046';
const SECRET = 'introspection-secret-0123456789';
const available = existsSync(CHROMIUM);
if (!available) process.stderr.write(`\n[skipped] browser tests: ${CHROMIUM} is missing; .ci/run installs Debian's chromium\n\n`);




const b64url = (b: Buffer): string => b.toString('base64url');

(available ? describe : describe.skip)('consent and owner pages in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;
  let page: Page;
  let callback: Server;
  let callbackUrl: string;
  const shots = mkdtempSync(path.join(tmpdir(), 'latchkey-shots-'));
  const received: URL[] = [];

  const post = async (p: string, body: Record<string, string>, json = false, auth?: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`${app.baseUrl}${p}`, {
      method: 'POST',
      headers: {
        'content-type': json ? 'application/json' : 'application/x-www-form-urlencoded',
        ...(auth ? { authorization: auth } : {}),
      },
      body: json ? JSON.stringify(body) : new URLSearchParams(body).toString(),
    });
    return (await res.json()) as Record<string, unknown>;
  };
  const register = async (name: string, redirectUri: string): Promise<string> => {
    const res = await fetch(`${app.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: name, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }),
    });
    return ((await res.json()) as { client_id: string }).client_id;
  };
  const authorizeUrl = (clientId: string, redirectUri: string, challenge: string, state: string): string =>
    `${app.baseUrl}/authorize?${new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge, code_challenge_method: 'S256', state, scope: 'mcp', resource: 'https://mcp.example.com/mcp' })}`;
  const introspect = async (token: string): Promise<boolean> => (await post('/introspect', { token }, false, `Bearer ${SECRET}`)).active === true;
  const shot = async (name: string): Promise<void> => {
    const file = path.join(shots, name);
    await page.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync('docs', { recursive: true });
      copyFileSync(file, path.join('docs', name));
    }
  };

  beforeAll(async () => {
    app = await startApp({
      OAUTH_PIN: PIN,
      OAUTH_INTROSPECTION_SECRET: SECRET,
      OAUTH_RESOURCES: 'https://mcp.example.com/mcp',
      OAUTH_VALID_SCOPES: 'mcp',
    });
    // Stands in for the app's redirect endpoint: records what the browser brings back.
    callback = createServer((req, res) => {
      // Only the redirect itself: the browser also asks this origin for /favicon.ico.
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname === '/callback') received.push(url);
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>Connected</title><p>Connected</p>');
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    callbackUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    page = await browser.newPage({ viewport: { width: 520, height: 900 }, deviceScaleFactor: 1 });
    // Fail within the test's time rather than waiting forever for an element.
    page.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (callback ? callback.close(() => resolve()) : resolve()));
    await app?.stop();
  });

  let accessToken = '';

  it('consent: a wrong PIN shows an error, the right one approves and returns a code', async () => {
    // What Claude shows the owner: its real redirect host, for the screenshot.
    const claude = await register('claudeai', 'https://claude.ai/api/mcp/auth_callback');
    await page.goto(authorizeUrl(claude, 'https://claude.ai/api/mcp/auth_callback', b64url(randomBytes(32)), 's0'));
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toContain('claudeai');
    await expect(page.locator('.host').first().textContent()).resolves.toBe('claude.ai');
    await shot('consent.png');

    const verifier = b64url(randomBytes(32));
    const challenge = b64url(createHash('sha256').update(verifier).digest());
    const clientId = await register('MCP Inspector', callbackUrl);
    await page.goto(authorizeUrl(clientId, callbackUrl, challenge, 'state-123'));
    await page.getByLabel('Your PIN').fill('000000');
    await page.getByRole('button', { name: 'Approve' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('That PIN is not right');
    expect(received).toHaveLength(0);

    await page.getByLabel('Your PIN').fill(PIN);
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL((u) => u.pathname === '/callback');
    const back = received.at(-1);
    expect(back?.searchParams.get('state')).toBe('state-123');
    expect(back?.searchParams.get('iss')).toBe(app.baseUrl);
    const code = back?.searchParams.get('code') ?? '';
    expect(code).not.toBe('');

    const tokens = await post('/token', { grant_type: 'authorization_code', code, redirect_uri: callbackUrl, client_id: clientId, code_verifier: verifier });
    expect(tokens.token_type).toBe('Bearer');
    accessToken = String(tokens.access_token);
    expect(await introspect(accessToken)).toBe(true);
  });

  it('owner page: a wrong PIN is refused, the right one shows the clients and grants', async () => {
    await register('ChatGPT', 'https://chatgpt.com/connector_platform_oauth_redirect');
    await page.setViewportSize({ width: 1000, height: 900 });
    await page.goto(`${app.baseUrl}/admin`);
    await page.getByLabel('Your PIN').fill('111111');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('That PIN is not right');

    await page.getByLabel('Your PIN').fill(PIN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Connected apps' }).waitFor();
    for (const name of ['claudeai', 'MCP Inspector', 'ChatGPT']) {
      await expect(page.getByRole('article', { name }).count()).resolves.toBe(1);
    }
    const inspector = page.getByRole('article', { name: 'MCP Inspector' });
    await expect(inspector.locator('.grant').count()).resolves.toBe(1);
    await expect(inspector.textContent()).resolves.toContain('https://mcp.example.com/mcp');
    await expect(page.locator('.badge.ok').textContent()).resolves.toBe('Healthy');
    await shot('admin.png');
  });

  it('owner page: revoking the grant asks first, then the token stops working at once', async () => {
    await page.getByRole('button', { name: /^Revoke grant of MCP Inspector/ }).click();
    await page.getByRole('heading', { name: 'Revoke this grant?' }).waitFor();
    expect(await introspect(accessToken)).toBe(true);
    await page.getByRole('button', { name: 'Revoke grant' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('The grant was revoked');
    expect(await introspect(accessToken)).toBe(false);
    await expect(page.getByRole('article', { name: 'MCP Inspector' }).locator('.grant').count()).resolves.toBe(0);
  });

  it('owner page: deleting a client asks first, then it is gone', async () => {
    await page.getByRole('button', { name: 'Delete client ChatGPT' }).click();
    await page.getByRole('heading', { name: 'Delete this client?' }).waitFor();
    await page.getByRole('link', { name: 'Cancel' }).click();
    await expect(page.getByRole('article', { name: 'ChatGPT' }).count()).resolves.toBe(1);

    await page.getByRole('button', { name: 'Delete client ChatGPT' }).click();
    await page.getByRole('button', { name: 'Delete client' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('deleted');
    await expect(page.getByRole('article', { name: 'ChatGPT' }).count()).resolves.toBe(0);
    await expect(page.getByRole('article', { name: 'claudeai' }).count()).resolves.toBe(1);
  });
});

import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { checkAccess } from '../../src/identity/access-policy.js';
import type { LoginProvider } from '../../src/identity/login-provider.js';
import type { Person } from '../../src/identity/person.js';
import { startGithubStandin, type GithubStandin } from '../helpers/github-standin.js';
import { LOGIN_FORM } from '../helpers/login-by-fetch.js';
import { startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { identityConfig, only, providersFor } from './fixtures.js';

/**
 * The test providers' sign-in pages in a real browser (Debian's Chromium driven by
 * playwright-core), as the integrator's end-to-end test will use them: the browser goes to
 * the provider, a person fills the form, and the provider sends the browser to the callback.
 */
const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available) process.stderr.write(`\n[skipped] browser sign-in tests: ${CHROMIUM} is missing; .ci/run installs Debian's chromium\n\n`);

(available ? describe : describe.skip)('sign-in pages in Chromium', () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let callback: Server;
  let base: string;
  let idp: OidcIdp;
  let github: GithubStandin;

  beforeAll(async () => {
    // Stands in for Latchkey's callback route: the browser must land here with the provider's answer.
    callback = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>Back at Latchkey</title>');
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', () => resolve()));
    base = `http://127.0.0.1:${(callback.address() as AddressInfo).port}`;
    idp = await startOidcIdp({
      accounts: [{ id: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Example' }],
      clients: [{ clientId: 'latchkey', clientSecret: 'browser-test-secret-0123456789', redirectUris: [`${base}/login/callback/oidc`] }],
    });
    github = await startGithubStandin({
      users: [{ id: 583231, login: 'octocat', name: 'The Octocat', emails: [{ email: 'octocat@github.com', verified: true, primary: true }] }],
      apps: [{ clientId: 'Iv1.browser', clientSecret: 'github-browser-secret-0123', callbackUrl: `${base}/login/callback/github` }],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });

  // A fresh profile per test: the provider's session cookie would otherwise sign the next test in silently.
  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
  });

  afterEach(async () => {
    await context.close();
  });

  afterAll(async () => {
    await browser?.close();
    await idp?.stop();
    await github?.stop();
    callback?.closeAllConnections();
    await new Promise<void>((resolve) => (callback ? callback.close(() => resolve()) : resolve()));
  });

  /** What a person does: open the provider's page, type who they are, press the button. */
  async function signInInBrowser(p: LoginProvider, login: string, callbackUrl: string): Promise<{ back: URL; person: Person }> {
    const { url, transaction } = await p.start(callbackUrl);
    await page.goto(url);
    await page.fill(LOGIN_FORM.login, login);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbackUrl)), page.click(LOGIN_FORM.approve)]);
    const back = new URL(page.url());
    return { back, person: await p.finish(back, transaction, callbackUrl) };
  }

  /** Latchkey's variables for the test provider, admitting alice. */
  const oidcEnv = (): Record<string, string> => ({
    OAUTH_OIDC_ISSUER: idp.issuer,
    OAUTH_OIDC_CLIENT_ID: 'latchkey',
    OAUTH_OIDC_CLIENT_SECRET: 'browser-test-secret-0123456789',
    OAUTH_ALLOWED_EMAILS: 'alice@example.com',
  });

  it('completes an OpenID sign-in at oidc-provider', async () => {
    const env = oidcEnv();
    const p = only((await providersFor(env)).providers, 'oidc');
    const { person } = await signInInBrowser(p, 'alice', `${base}/login/callback/oidc`);
    expect(person).toEqual({
      provider: 'oidc',
      subject: `oidc:127.0.0.1:${idp.port}:alice`,
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice Example',
    });
    expect(checkAccess(person, identityConfig(env).policy)).toEqual({ allowed: true });
  });

  it('completes a GitHub sign-in at the stand-in', async () => {
    const env = {
      OAUTH_GITHUB_CLIENT_ID: 'Iv1.browser',
      OAUTH_GITHUB_CLIENT_SECRET: 'github-browser-secret-0123',
      OAUTH_GITHUB_URL: github.url,
      OAUTH_GITHUB_API_URL: github.apiUrl,
      OAUTH_ALLOWED_GITHUB_USERS: 'octocat',
    };
    const p = only((await providersFor(env)).providers, 'github');
    const { back, person } = await signInInBrowser(p, 'octocat', `${base}/login/callback/github`);
    expect(back.searchParams.get('code')).toBeTruthy();
    expect(person).toMatchObject({ subject: 'github:583231', githubLogin: 'octocat', email: 'octocat@github.com', emailVerified: true });
  });

  it('brings the browser back with access_denied when the person cancels', async () => {
    const env = oidcEnv();
    const p = only((await providersFor(env)).providers, 'oidc');
    const callbackUrl = `${base}/login/callback/oidc`;
    const { url, transaction } = await p.start(callbackUrl);
    await page.goto(url);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(callbackUrl)), page.click(LOGIN_FORM.deny)]);
    const back = new URL(page.url());
    expect(back.searchParams.get('error')).toBe('access_denied');
    await expect(p.finish(back, transaction, callbackUrl)).rejects.toMatchObject({ reason: 'denied' });
  });
});

import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as client from 'openid-client';
import { Daemon, freePort } from './daemon.js';

/**
 * The whole flow a connector host goes through, against the real daemon in a child process,
 * with openid-client v6 as the client. The daemon is restarted (SIGTERM, exit 0, same port
 * and data directory) between every step, and killed with SIGKILL right after token
 * responses, and every step checks that nothing was lost.
 */

jest.setTimeout(60_000);

const PIN = '13572468';
const INTROSPECTION_SECRET = 'e2e-introspection-secret-0123456789';
const SCOPE = 'mcp';

let tmpRoot: string;
let dataDir: string;
let daemon: Daemon;
let issuer: URL;
let resource: string;
let redirectUri: string;

/** What the client keeps between steps, as a host keeps it on disk. */
const state = {
  publicClientId: '',
  confidentialClientId: '',
  confidentialSecret: '',
  codeVerifier: '',
  oauthState: '',
  authorizationUrl: '',
  cookie: '',
  consent: '',
  callback: '',
  accessToken: '',
  refreshToken: '',
  rotatedAccessToken: '',
  rotatedRefreshToken: '',
  /** Every credential the server ever handed out, to grep the data directory for. */
  secrets: [] as string[],
};

const discoveryOptions: client.DiscoveryRequestOptions = {
  algorithm: 'oauth2',
  execute: [client.allowInsecureRequests],
  timeout: 10,
};

/** A fresh Configuration for a stored client_id, as a host builds after its own restart. */
function publicClient(): Promise<client.Configuration> {
  return client.discovery(issuer, state.publicClientId, undefined, client.None(), discoveryOptions);
}

function confidentialClient(): Promise<client.Configuration> {
  return client.discovery(
    issuer,
    state.confidentialClientId,
    { client_secret: state.confidentialSecret, token_endpoint_auth_method: 'client_secret_basic' },
    client.ClientSecretBasic(state.confidentialSecret),
    discoveryOptions,
  );
}

/** SIGTERM must end the daemon with exit code 0; then it starts again on the same data. */
async function restart(): Promise<void> {
  const before = daemon.pid;
  const exit = await daemon.restart();
  expect(exit).toEqual({ code: 0, signal: null });
  expect(daemon.pid).not.toBe(before);
}

/** kill -9: no shutdown hook runs, so only what was on disk before the response survives. */
async function crashAndStart(): Promise<void> {
  const before = daemon.pid;
  const exit = await daemon.stop('SIGKILL');
  expect(exit.signal).toBe('SIGKILL');
  const printed = daemon.output.length;
  await daemon.start();
  expect(daemon.pid).not.toBe(before);
  // The startup line says what the journal gave back (the kill left it uncompacted).
  const startup = daemon.output.slice(printed).join('');
  expect(startup).toMatch(/loaded \d+ clients, \d+ access tokens, \d+ refresh tokens, \d+ pending codes; \d+ changes replayed from the journal after an unclean stop/);
}

async function introspect(token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${daemon.baseUrl}/introspect`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${INTROSPECTION_SECRET}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function stats(): Promise<Record<string, unknown>> {
  const res = await fetch(`${daemon.baseUrl}/oauth/stats`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

function decodeHtml(value: string): string {
  return value
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCharCode(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

interface ConsentPage {
  status: number;
  html: string;
  cookie: string;
  consent: string;
}

/** What a browser does with the authorization URL: show the page, keep the CSRF cookie. */
async function openConsentPage(url: string, cookie?: string): Promise<ConsentPage> {
  const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  const html = await res.text();
  const setCookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .find((c) => c.startsWith('latchkey_csrf='));
  const consent = /<input[^>]*name="consent"[^>]*value="([^"]*)"/.exec(html)?.[1];
  return { status: res.status, html, cookie: setCookie ?? cookie ?? '', consent: consent ? decodeHtml(consent) : '' };
}

/** Posts the consent form the way the browser would, and returns the redirect back to the client. */
async function postConsent(page: { cookie: string; consent: string }, decision: 'approve' | 'deny', pin = PIN): Promise<Response> {
  return fetch(`${daemon.baseUrl}/authorize/consent`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: page.cookie },
    body: new URLSearchParams({ consent: page.consent, pin, decision }),
  });
}

async function expectOAuthError(promise: Promise<unknown>, error: string): Promise<void> {
  const caught = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(caught).toBeInstanceOf(client.ResponseBodyError);
  expect((caught as client.ResponseBodyError).error).toBe(error);
}

beforeAll(async () => {
  tmpRoot = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-e2e-'));
  dataDir = await fsp.mkdtemp(path.join(tmpRoot, 'data-'));
  const port = await freePort();
  const mcpPort = await freePort();
  const callbackPort = await freePort();
  resource = `http://127.0.0.1:${mcpPort}/mcp`;
  redirectUri = `http://127.0.0.1:${callbackPort}/callback`;
  daemon = new Daemon({
    port,
    dataDir,
    cwd: tmpRoot,
    env: {
      OAUTH_PIN: PIN,
      OAUTH_INTROSPECTION_SECRET: INTROSPECTION_SECRET,
      OAUTH_RESOURCES: resource,
      OAUTH_VALID_SCOPES: SCOPE,
      OAUTH_ACCESS_TOKEN_TTL: '600',
      OAUTH_AUTH_CODE_TTL: '300',
      OAUTH_REFRESH_REUSE_GRACE: '30',
      OAUTH_CLEANUP_INTERVAL: '1',
      // Info level: the startup lines are checked, and every request line must hold no secret.
      LOG_LEVEL: 'info',
    },
  });
  issuer = new URL(daemon.baseUrl);
  await daemon.start();
});

afterAll(async () => {
  await daemon?.kill();
  if (tmpRoot) await fsp.rm(tmpRoot, { recursive: true, force: true });
});

describe('openid-client against the real daemon, restarted between every step', () => {
  // Jest keeps going after a failed step; every later step would then fail for the same
  // reason, so print the daemon's output once to make the first failure readable.
  let failed = false;
  const step = (name: string, fn: () => Promise<void>): void => {
    test(name, async () => {
      if (failed) throw new Error('an earlier step failed');
      try {
        await fn();
      } catch (err) {
        failed = true;
        process.stderr.write(`\n--- daemon output ---\n${daemon.log()}\n---------------------\n`);
        throw err;
      }
    });
  };

  step('first start creates the data files with private permissions', async () => {
    const files = (await fsp.readdir(dataDir)).sort();
    expect(files).toEqual(expect.arrayContaining(['clients.json', 'codes.json', 'refresh_tokens.json', 'tokens.json']));
    expect((await fsp.stat(dataDir)).mode & 0o777).toBe(0o700);
    for (const f of ['clients.json', 'codes.json', 'refresh_tokens.json', 'tokens.json']) {
      expect((await fsp.stat(path.join(dataDir, f))).mode & 0o777).toBe(0o600);
    }
  });

  step('discovery', async () => {
    await restart();
    const config = await client.discovery(issuer, 'not-registered-yet', undefined, client.None(), discoveryOptions);
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(daemon.baseUrl);
    expect(meta.authorization_endpoint).toBe(`${daemon.baseUrl}/authorize`);
    expect(meta.token_endpoint).toBe(`${daemon.baseUrl}/token`);
    expect(meta.registration_endpoint).toBe(`${daemon.baseUrl}/register`);
    expect(meta.revocation_endpoint).toBe(`${daemon.baseUrl}/revoke`);
    expect(meta.introspection_endpoint).toBe(`${daemon.baseUrl}/introspect`);
    expect(meta.code_challenge_methods_supported).toEqual(['S256']);
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['none', 'client_secret_basic']));
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    expect(meta.scopes_supported).toEqual([SCOPE]);
    expect(config.serverMetadata().supportsPKCE()).toBe(true);
    // Not an OpenID provider.
    expect((await fetch(`${daemon.baseUrl}/.well-known/openid-configuration`)).status).toBe(404);
  });

  step('dynamic client registration: a public client and a client_secret_basic one', async () => {
    await restart();
    const pub = await client.dynamicClientRegistration(
      issuer,
      {
        client_name: 'e2e public client',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      },
      client.None(),
      discoveryOptions,
    );
    const pubMeta = pub.clientMetadata();
    expect(pubMeta.client_id).toMatch(/\S{16,}/);
    expect(pubMeta.client_secret).toBeUndefined();
    expect(pubMeta.redirect_uris).toEqual([redirectUri]);
    expect(pubMeta.token_endpoint_auth_method).toBe('none');
    expect(typeof pubMeta.client_id_issued_at).toBe('number');
    expect(Object.values(pubMeta)).not.toContain(null);
    state.publicClientId = pubMeta.client_id;

    const conf = await client.dynamicClientRegistration(
      issuer,
      {
        client_name: 'e2e confidential client',
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      undefined,
      discoveryOptions,
    );
    const confMeta = conf.clientMetadata();
    expect(confMeta.token_endpoint_auth_method).toBe('client_secret_basic');
    expect(typeof confMeta.client_secret).toBe('string');
    expect(confMeta.client_secret_expires_at).toBe(0);
    expect(Object.values(confMeta)).not.toContain(null);
    expect(confMeta.client_id).not.toBe(state.publicClientId);
    state.confidentialClientId = confMeta.client_id;
    state.confidentialSecret = String(confMeta.client_secret);
    state.secrets.push(state.confidentialSecret);
  });

  step('after a restart the clients are still registered (no "Client ID not found")', async () => {
    await restart();
    expect(await stats()).toMatchObject({ clients: 2 });
    for (const clientId of [state.publicClientId, state.confidentialClientId]) {
      const url = new URL(`${daemon.baseUrl}/authorize`);
      url.search = new URLSearchParams({
        response_type: 'code',
        client_id: clientId,
        redirect_uri: redirectUri,
        code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      }).toString();
      const page = await openConsentPage(url.href);
      expect(page.status).toBe(200);
      expect(page.html).not.toMatch(/not found|unknown client/i);
      expect(page.consent).not.toBe('');
    }
  });

  step('authorization URL with PKCE S256 and resource opens the consent page', async () => {
    await restart();
    const config = await publicClient();
    state.codeVerifier = client.randomPKCECodeVerifier();
    state.oauthState = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(state.codeVerifier),
      code_challenge_method: 'S256',
      state: state.oauthState,
      resource,
    });
    expect(url.href.startsWith(`${daemon.baseUrl}/authorize?`)).toBe(true);
    state.authorizationUrl = url.href;

    const page = await openConsentPage(url.href);
    expect(page.status).toBe(200);
    expect(page.html).toContain('e2e public client');
    expect(page.html).toContain(`127.0.0.1:${new URL(redirectUri).port}`);
    expect(page.html).toContain(resource);
    expect(page.html).toMatch(/name="pin"/);
    expect(page.cookie).toMatch(/^latchkey_csrf=[A-Za-z0-9_-]+$/);
    expect(page.consent).not.toBe('');
    state.cookie = page.cookie;
    state.consent = page.consent;
  });

  step('the consent page survives a restart: posting it afterwards redirects with code, state and iss', async () => {
    await restart();
    // A wrong PIN first: the page again, no redirect, no code.
    const wrong = await postConsent(state, 'approve', '00000000');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('location')).toBeNull();
    expect(await wrong.text()).toMatch(/PIN is not right/);

    const res = await postConsent(state, 'approve');
    expect(res.status).toBe(303);
    const location = res.headers.get('location');
    expect(location).not.toBeNull();
    const callback = new URL(String(location));
    expect(`${callback.origin}${callback.pathname}`).toBe(redirectUri);
    expect(callback.searchParams.get('state')).toBe(state.oauthState);
    expect(callback.searchParams.get('iss')).toBe(daemon.baseUrl);
    expect(callback.searchParams.get('code')).toMatch(/\S{22,}/);
    expect(callback.searchParams.get('error')).toBeNull();
    state.callback = callback.href;
    state.secrets.push(String(callback.searchParams.get('code')));
    expect(await stats()).toMatchObject({ authorization_codes: 1 });
  });

  step('code exchange after a restart; kill -9 right after the response loses nothing', async () => {
    await restart();
    const config = await publicClient();
    const tokens = await client.authorizationCodeGrant(
      config,
      new URL(state.callback),
      { pkceCodeVerifier: state.codeVerifier, expectedState: state.oauthState },
      { resource },
    );
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.scope).toBe(SCOPE);
    expect(tokens.expires_in).toBe(600);
    expect(typeof tokens.refresh_token).toBe('string');
    expect(tokens.access_token.length).toBeGreaterThanOrEqual(43);
    state.accessToken = tokens.access_token;
    state.refreshToken = String(tokens.refresh_token);
    state.secrets.push(state.accessToken, state.refreshToken);

    await crashAndStart();
    const info = await introspect(state.accessToken);
    expect(info).toMatchObject({ active: true, client_id: state.publicClientId, aud: resource, scope: SCOPE, token_type: 'Bearer' });
    // The code was consumed before the crash too: it cannot be exchanged again.
    await expectOAuthError(
      client.authorizationCodeGrant(
        await publicClient(),
        new URL(state.callback),
        { pkceCodeVerifier: state.codeVerifier, expectedState: state.oauthState },
        { resource },
      ),
      'invalid_grant',
    );
  });

  step('a replayed code revoked what it had issued; a new authorization gets fresh tokens', async () => {
    await restart();
    // The replay in the previous step revokes the grant (RFC 6749 §4.1.2), so authorize again.
    expect(await introspect(state.accessToken)).toEqual({ active: false });
    const config = await publicClient();
    state.codeVerifier = client.randomPKCECodeVerifier();
    state.oauthState = client.randomState();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(state.codeVerifier),
      code_challenge_method: 'S256',
      state: state.oauthState,
      resource,
    });
    const page = await openConsentPage(url.href, state.cookie);
    expect(page.status).toBe(200);
    await restart();
    const res = await postConsent(page, 'approve');
    expect(res.status).toBe(303);
    state.callback = String(res.headers.get('location'));
    state.secrets.push(String(new URL(state.callback).searchParams.get('code')));

    await restart();
    const tokens = await client.authorizationCodeGrant(await publicClient(), new URL(state.callback), {
      pkceCodeVerifier: state.codeVerifier,
      expectedState: state.oauthState,
    });
    state.accessToken = tokens.access_token;
    state.refreshToken = String(tokens.refresh_token);
    state.secrets.push(state.accessToken, state.refreshToken);
    await crashAndStart();
    // Without `resource` at the token endpoint the audience still comes from the authorization.
    expect(await introspect(state.accessToken)).toMatchObject({ active: true, aud: resource });
  });

  step('refresh rotates the refresh token; kill -9 right after the response loses nothing', async () => {
    await restart();
    const tokens = await client.refreshTokenGrant(await publicClient(), state.refreshToken, { resource });
    expect(tokens.access_token).not.toBe(state.accessToken);
    expect(typeof tokens.refresh_token).toBe('string');
    expect(tokens.refresh_token).not.toBe(state.refreshToken);
    expect(tokens.scope).toBe(SCOPE);
    state.rotatedAccessToken = tokens.access_token;
    state.rotatedRefreshToken = String(tokens.refresh_token);
    state.secrets.push(state.rotatedAccessToken, state.rotatedRefreshToken);

    await crashAndStart();
    expect(await introspect(state.rotatedAccessToken)).toMatchObject({ active: true, aud: resource });
  });

  step('introspection after a restart: active, bound to the resource', async () => {
    await restart();
    const info = await introspect(state.rotatedAccessToken);
    expect(info).toMatchObject({
      active: true,
      client_id: state.publicClientId,
      scope: SCOPE,
      aud: resource,
      iss: daemon.baseUrl,
      token_type: 'Bearer',
    });
    const now = Math.floor(Date.now() / 1000);
    expect(info.exp).toEqual(expect.any(Number));
    expect(info.iat).toEqual(expect.any(Number));
    expect(Number(info.exp) - Number(info.iat)).toBe(600);
    expect(Math.abs(Number(info.iat) - now)).toBeLessThan(60);
    // Refresh tokens are never shown to resource servers as active.
    expect(await introspect(state.rotatedRefreshToken)).toEqual({ active: false });
    // Without the secret: 401.
    const anon = await fetch(`${daemon.baseUrl}/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: state.rotatedAccessToken }),
    });
    expect(anon.status).toBe(401);
  });

  step('revocation of the refresh token, then a restart', async () => {
    await restart();
    await client.tokenRevocation(await publicClient(), state.rotatedRefreshToken, { token_type_hint: 'refresh_token' });
  });

  step('after a restart the revoked grant stays revoked', async () => {
    await restart();
    expect(await introspect(state.rotatedAccessToken)).toEqual({ active: false });
    expect(await introspect(state.accessToken)).toEqual({ active: false });
    await expectOAuthError(client.refreshTokenGrant(await publicClient(), state.rotatedRefreshToken), 'invalid_grant');
    await expectOAuthError(client.refreshTokenGrant(await publicClient(), state.refreshToken), 'invalid_grant');
    // The client itself is untouched by revocation.
    expect(await stats()).toMatchObject({ clients: 2 });
  });

  step('the client_secret_basic client goes through the same flow across restarts', async () => {
    await restart();
    const verifier = client.randomPKCECodeVerifier();
    const oauthState = client.randomState();
    const url = client.buildAuthorizationUrl(await confidentialClient(), {
      redirect_uri: redirectUri,
      scope: SCOPE,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: oauthState,
      resource,
    });
    const page = await openConsentPage(url.href);
    expect(page.status).toBe(200);
    expect(page.html).toContain('e2e confidential client');

    await restart();
    const res = await postConsent(page, 'approve');
    expect(res.status).toBe(303);
    const callback = new URL(String(res.headers.get('location')));

    await restart();
    const tokens = await client.authorizationCodeGrant(
      await confidentialClient(),
      callback,
      { pkceCodeVerifier: verifier, expectedState: oauthState },
      { resource },
    );
    state.secrets.push(tokens.access_token, String(tokens.refresh_token));
    await crashAndStart();
    expect(await introspect(tokens.access_token)).toMatchObject({ active: true, client_id: state.confidentialClientId, aud: resource });

    await restart();
    const refreshed = await client.refreshTokenGrant(await confidentialClient(), String(tokens.refresh_token));
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    state.secrets.push(refreshed.access_token, String(refreshed.refresh_token));

    await restart();
    // A wrong secret is invalid_client (so hosts re-register), never invalid_grant.
    const wrong = await client.discovery(
      issuer,
      state.confidentialClientId,
      { client_secret: 'wrong-secret' },
      client.ClientSecretBasic('wrong-secret'),
      discoveryOptions,
    );
    const caught = await client.refreshTokenGrant(wrong, String(refreshed.refresh_token)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(caught).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    const challenge = caught as client.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]?.scheme).toBe('basic');
    // The real secret still works after all that.
    expect(await introspect(refreshed.access_token)).toMatchObject({ active: true });
    await client.tokenRevocation(await confidentialClient(), String(refreshed.refresh_token));
    expect(await introspect(refreshed.access_token)).toEqual({ active: false });
  });

  step('no raw credential is ever written to the data directory, and the daemon logged no error', async () => {
    await restart();
    const files = await fsp.readdir(dataDir);
    const contents = await Promise.all(files.map(async (f) => {
      const full = path.join(dataDir, f);
      return (await fsp.stat(full)).isFile() ? fsp.readFile(full, 'utf8') : '';
    }));
    const all = contents.join('\n');
    expect(state.secrets.length).toBeGreaterThanOrEqual(10);
    for (const secret of state.secrets) {
      expect(secret.length).toBeGreaterThan(0);
      expect(all.includes(secret)).toBe(false);
    }
    expect(all.includes(PIN)).toBe(false);
    // Nor does any log line, at info level, of any run.
    const log = daemon.log();
    expect(log).toMatch(/request completed/);
    for (const secret of state.secrets) expect(log.includes(secret)).toBe(false);
    // Nothing was set aside as corrupt, and no run logged at error level (pino: 50 and up).
    expect(files.filter((f) => /corrupt|\.bad|aside/i.test(f))).toEqual([]);
    expect(daemon.log()).not.toMatch(/"level":(5|6)\d/);
    const exit = await daemon.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

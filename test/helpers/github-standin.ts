import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOGIN_FORM, loginByFetch, type LoginAction } from './login-by-fetch.js';

/**
 * A stand-in for GitHub on 127.0.0.1, since GitHub itself cannot be reached from the tests.
 * It is laid out as GitHub Enterprise Server is (web endpoints at the root, the REST API under
 * /api/v3) and answers as GitHub's documentation says:
 *
 * - docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
 *   (GET /login/oauth/authorize, POST /login/oauth/access_token, PKCE S256, codes live 10 minutes
 *   and work once, redirect_uri the registered callback or a subdirectory of it);
 * - .../troubleshooting-authorization-request-errors (access_denied and redirect_uri_mismatch
 *   sent back to the callback) and .../troubleshooting-oauth-app-access-token-request-errors
 *   (incorrect_client_credentials, redirect_uri_mismatch, bad_verification_code, all with HTTP 200);
 * - docs.github.com/en/rest/users/users#get-the-authenticated-user (GET /user),
 *   .../rest/users/emails#list-email-addresses-for-the-authenticated-user (GET /user/emails, needs
 *   user:email), .../rest/orgs/members#get-an-organization-membership-for-the-authenticated-user
 *   (GET /user/memberships/orgs/{org}: 200 with state active or pending, 404 for a non-member;
 *   needs read:org).
 *
 * Where the docs are silent (the answer to a wrong code_verifier, the status for a missing
 * scope), it answers as GitHub does for the nearest documented case: bad_verification_code, 403.
 */

export interface StandinUser {
  id: number;
  login: string;
  name?: string | null;
  emails: { email: string; verified: boolean; primary: boolean }[];
  /** Organisation login → membership state. */
  orgs?: Record<string, 'active' | 'pending'>;
}

export interface StandinApp {
  clientId: string;
  clientSecret: string;
  /** The OAuth app's "Authorization callback URL". */
  callbackUrl: string;
}

export interface GithubStandin {
  /** For OAUTH_GITHUB_URL. */
  url: string;
  /** For OAUTH_GITHUB_API_URL (GitHub Enterprise Server's layout). */
  apiUrl: string;
  /** Completes the authorize page with plain fetch; returns the redirect to the app's callback. */
  signIn(authorizationUrl: string, login: string, action?: LoginAction): Promise<URL>;
  setUser(user: StandinUser): void;
  /** Makes every REST API call answer this status (GitHub's API down while github.com is up); undefined restores it. */
  failApi(status: number | undefined): void;
  /** The query of every authorize request, to check what an app asked for. */
  readonly authorizeRequests: URLSearchParams[];
  /** Every API path called, in order. */
  readonly apiCalls: string[];
  stop(): Promise<void>;
}

interface PendingAuthorization {
  app: StandinApp;
  redirectUri: string;
  scopes: string[];
  state: string | null;
  codeChallenge: string | null;
}

interface IssuedCode {
  clientId: string;
  login: string;
  scopes: string[];
  redirectUri: string;
  codeChallenge: string | null;
  expiresAt: number;
  used: boolean;
}

const DOCS = 'https://docs.github.com';
const random = (prefix: string): string => `${prefix}${randomBytes(20).toString('hex')}`;

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

function redirect(res: ServerResponse, to: URL): void {
  res.writeHead(302, { location: to.href });
  res.end();
}

async function readBody(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if ((req.headers['content-type'] ?? '').includes('application/json')) {
    return new URLSearchParams(JSON.parse(text) as Record<string, string>);
  }
  return new URLSearchParams(text);
}

/** GitHub accepts the registered callback URL or a subdirectory of it (same host and port). */
function redirectAllowed(requested: string, registered: string): boolean {
  const a = new URL(requested);
  const b = new URL(registered);
  const base = b.pathname.endsWith('/') ? b.pathname : `${b.pathname}/`;
  return a.origin === b.origin && (a.pathname === b.pathname || a.pathname.startsWith(base));
}

function authorizePage(action: string, appName: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Authorize application</title></head>
<body>
<h1>Authorize ${appName.replace(/[<>&"]/g, '')}</h1>
<form method="post" action="${action}">
  <label>Username <input name="login" autocomplete="username" autofocus></label>
  <button type="submit" name="action" value="approve">Authorize</button>
  <button type="submit" name="action" value="deny">Cancel</button>
</form>
</body></html>`;
}

function userBody(user: StandinUser, apiUrl: string): Record<string, unknown> {
  return {
    login: user.login,
    id: user.id,
    node_id: `U_${user.id}`,
    avatar_url: `${apiUrl}/avatars/${user.id}`,
    url: `${apiUrl}/users/${user.login}`,
    html_url: `https://github.com/${user.login}`,
    type: 'User',
    site_admin: false,
    name: user.name ?? null,
    company: null,
    blog: '',
    location: null,
    email: null,
    hireable: null,
    bio: null,
    public_repos: 0,
    followers: 0,
    following: 0,
    created_at: '2020-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
}

export async function startGithubStandin(options: { users: StandinUser[]; apps: StandinApp[]; now?: () => number }): Promise<GithubStandin> {
  const now = options.now ?? Date.now;
  const users = new Map(options.users.map((u) => [u.login.toLowerCase(), u]));
  const apps = new Map(options.apps.map((a) => [a.clientId, a]));
  const pending = new Map<string, PendingAuthorization>();
  const codes = new Map<string, IssuedCode>();
  const tokens = new Map<string, { login: string; scopes: string[] }>();
  const authorizeRequests: URLSearchParams[] = [];
  const apiCalls: string[] = [];
  let apiFailure: number | undefined;

  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const apiUrl = `${url}/api/v3`;

  function authorize(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    authorizeRequests.push(query);
    const app = apps.get(query.get('client_id') ?? '');
    if (app === undefined) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<!doctype html><title>Not Found</title>');
      return;
    }
    const redirectUri = query.get('redirect_uri') ?? app.callbackUrl;
    if (!redirectAllowed(redirectUri, app.callbackUrl)) {
      const back = new URL(app.callbackUrl);
      back.searchParams.set('error', 'redirect_uri_mismatch');
      back.searchParams.set('error_description', 'The redirect_uri MUST match the registered callback URL for this application.');
      back.searchParams.set('error_uri', `${DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch`);
      const state = query.get('state');
      if (state !== null) back.searchParams.set('state', state);
      redirect(res, back);
      return;
    }
    const id = random('');
    pending.set(id, {
      app,
      redirectUri,
      // GitHub takes scopes separated by spaces (it answers with commas).
      scopes: (query.get('scope') ?? '').split(/[\s,]+/).filter((s) => s !== ''),
      state: query.get('state'),
      codeChallenge: query.get('code_challenge_method') === 'S256' ? query.get('code_challenge') : null,
    });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(authorizePage(`/login/oauth/authorize/${id}`, app.clientId));
  }

  async function decide(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const request = pending.get(id);
    const form = await readBody(req);
    if (request === undefined) {
      res.writeHead(404).end();
      return;
    }
    pending.delete(id);
    const back = new URL(request.redirectUri);
    if (form.get('action') === 'deny') {
      back.searchParams.set('error', 'access_denied');
      back.searchParams.set('error_description', 'The user has denied your application access.');
      back.searchParams.set('error_uri', `${DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied`);
    } else {
      const user = users.get((form.get('login') ?? '').toLowerCase());
      if (user === undefined) {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>Incorrect username or password.</p>');
        return;
      }
      const code = random('');
      codes.set(code, {
        clientId: request.app.clientId,
        login: user.login,
        scopes: request.scopes,
        redirectUri: request.redirectUri,
        codeChallenge: request.codeChallenge,
        expiresAt: now() + 10 * 60_000,
        used: false,
      });
      back.searchParams.set('code', code);
    }
    if (request.state !== null) back.searchParams.set('state', request.state);
    redirect(res, back);
  }

  async function accessToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const tokenError = (error: string, description: string): void =>
      // Documented: these errors come with HTTP 200.
      sendJson(res, 200, {
        error,
        error_description: description,
        error_uri: `${DOCS}/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${error.replaceAll('_', '-')}`,
      });
    const app = apps.get(body.get('client_id') ?? '');
    if (app === undefined || body.get('client_secret') !== app.clientSecret) {
      tokenError('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
      return;
    }
    const code = codes.get(body.get('code') ?? '');
    if (code === undefined || code.used || code.expiresAt <= now() || code.clientId !== app.clientId) {
      tokenError('bad_verification_code', 'The code passed is incorrect or expired.');
      return;
    }
    code.used = true;
    const redirectUri = body.get('redirect_uri');
    if (redirectUri !== null && redirectUri !== code.redirectUri) {
      tokenError('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
      return;
    }
    if (code.codeChallenge !== null) {
      const verifier = body.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== code.codeChallenge) {
        tokenError('bad_verification_code', 'The code passed is incorrect or expired.');
        return;
      }
    }
    const token = random('gho_');
    tokens.set(token, { login: code.login, scopes: code.scopes });
    const scope = code.scopes.join(',');
    if ((req.headers.accept ?? '').includes('application/json')) {
      sendJson(res, 200, { access_token: token, scope, token_type: 'bearer' });
    } else {
      res.writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' });
      res.end(new URLSearchParams({ access_token: token, scope, token_type: 'bearer' }).toString());
    }
  }

  function api(req: IncomingMessage, res: ServerResponse, path: string): void {
    apiCalls.push(path);
    if (apiFailure !== undefined) {
      sendJson(res, apiFailure, { message: 'Service Unavailable', documentation_url: `${DOCS}/rest` });
      return;
    }
    const auth = req.headers.authorization ?? '';
    const grant = tokens.get(auth.replace(/^(Bearer|token)\s+/i, ''));
    const user = grant === undefined ? undefined : users.get(grant.login.toLowerCase());
    if (grant === undefined || user === undefined) {
      sendJson(res, 401, { message: 'Bad credentials', documentation_url: `${DOCS}/rest`, status: '401' });
      return;
    }
    const notFound = (): void => sendJson(res, 404, { message: 'Not Found', documentation_url: `${DOCS}/rest`, status: '404' });
    const has = (scope: string): boolean => grant.scopes.includes(scope);
    if (path === '/user') {
      sendJson(res, 200, userBody(user, apiUrl));
      return;
    }
    if (path === '/user/emails') {
      if (!has('user:email') && !has('user')) {
        sendJson(res, 403, { message: 'Resource not accessible by integration', documentation_url: `${DOCS}/rest`, status: '403' });
        return;
      }
      sendJson(res, 200, user.emails.map((e) => ({ ...e, visibility: e.primary ? 'private' : null })));
      return;
    }
    const membership = /^\/user\/memberships\/orgs\/([^/]+)$/.exec(path);
    if (membership?.[1] !== undefined) {
      if (!has('read:org') && !has('user')) {
        sendJson(res, 403, { message: 'You need at least read:org scope or user scope to list your organization memberships.', documentation_url: `${DOCS}/rest`, status: '403' });
        return;
      }
      const wanted = decodeURIComponent(membership[1]).toLowerCase();
      const entry = Object.entries(user.orgs ?? {}).find(([org]) => org.toLowerCase() === wanted);
      if (entry === undefined) {
        notFound();
        return;
      }
      const [org, state] = entry;
      sendJson(res, 200, {
        url: `${apiUrl}/orgs/${org}/memberships/${user.login}`,
        state,
        role: 'member',
        organization_url: `${apiUrl}/orgs/${org}`,
        organization: { login: org, id: 1000 + org.length, url: `${apiUrl}/orgs/${org}` },
        user: { login: user.login, id: user.id },
      });
      return;
    }
    notFound();
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const requestUrl = new URL(req.url ?? '/', url);
    const path = requestUrl.pathname;
    const pendingMatch = /^\/login\/oauth\/authorize\/([0-9a-f]+)$/.exec(path);
    const handled = (async () => {
      if (req.method === 'GET' && path === '/login/oauth/authorize') authorize(req, res, requestUrl.searchParams);
      else if (req.method === 'POST' && pendingMatch?.[1] !== undefined) await decide(req, res, pendingMatch[1]);
      else if (req.method === 'POST' && path === '/login/oauth/access_token') await accessToken(req, res);
      else if (req.method === 'GET' && path.startsWith('/api/v3/')) api(req, res, path.slice('/api/v3'.length));
      else res.writeHead(404).end();
    })();
    handled.catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`stand-in failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  });

  return {
    url,
    apiUrl,
    authorizeRequests,
    apiCalls,
    signIn: (authorizationUrl, login, action = 'approve') => loginByFetch(authorizationUrl, url, login, action),
    setUser: (user) => void users.set(user.login.toLowerCase(), user),
    failApi: (status) => {
      apiFailure = status;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export { LOGIN_FORM };

import { createHash, randomBytes } from 'node:crypto';

/**
 * A load generator for the crash tests: registrations, code exchanges through the real
 * consent flow, and refreshes, against a daemon at `baseUrl`, or spread over several (a
 * function that names the next one, e.g. round-robin). It keeps a ledger of what the daemon
 * acknowledged (a 2xx it received in full) and of requests whose outcome is unknown (the
 * connection died first, or a 503 said the store could not be reached: a change may have been
 * committed before the answer was lost), so a test can check, after a crash or an outage, that
 * everything acknowledged survived and that nothing beyond the unknown requests appeared.
 * Any other 5xx fails the load.
 */

/** Where requests go: one daemon, or a function that picks one per request. */
export type Target = string | (() => string);
const at = (target: Target): string => (typeof target === 'string' ? target : target());

export const PIN = '13572468';
export const INTROSPECTION_SECRET = 'crash-test-introspection-secret-0123';
export const REDIRECT_URI = 'https://claude.ai/api/mcp/auth_callback';

/**
 * The daemon's variables for a load that must never be throttled: the PIN, the introspection
 * secret, limits far above what the load sends, and a refresh grace of a day (a refresh whose
 * answer was lost may have rotated the token: the retry with the old one must still work,
 * not revoke the grant).
 */
export const LOAD_ENV = {
  OAUTH_PIN: PIN,
  OAUTH_INTROSPECTION_SECRET: INTROSPECTION_SECRET,
  OAUTH_REGISTRATION_RATE_LIMIT: '1000000',
  OAUTH_TOKEN_RATE_LIMIT: '1000000',
  OAUTH_INTROSPECTION_RATE_LIMIT: '1000000',
  OAUTH_AUTHORIZE_RATE_LIMIT: '1000000',
  OAUTH_PIN_MAX_FAILURES_PER_HOUR: '1000',
  OAUTH_REFRESH_REUSE_GRACE: '86400',
};
export const REGISTRATION = {
  client_name: 'claudeai',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  redirect_uris: [REDIRECT_URI],
};

/** One grant: the client, every access token it yielded, and its newest refresh token. */
export interface Chain {
  clientId: string;
  accessTokens: string[];
  refreshToken: string;
  /** Set while a refresh of this chain is running, so workers do not pile on one chain. */
  busy: boolean;
  /** Refreshes whose answer was lost: the server may have rotated without us knowing. */
  lostRefreshes: number;
}

export class Ledger {
  readonly clients: string[] = [];
  readonly chains: Chain[] = [];
  /** Requests that may have changed state but whose answer never arrived. */
  unknownRegistrations = 0;
  unknownIssuances = 0;
  /** Requests answered 503 (the store unavailable): each is also counted as unknown. */
  unavailable = 0;
  /** Acknowledged access tokens, across all chains. */
  get accessTokens(): number {
    return this.chains.reduce((n, c) => n + c.accessTokens.length, 0);
  }
}

class Lost extends Error {}
/** A 503: the store could not be reached; as unknown as a lost answer. */
class Unavailable extends Lost {}

/** fetch that turns a dead connection into {@link Lost} and a 503 into {@link Unavailable}: the outcome is unknown. */
async function call(url: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new Lost((err as Error).message);
  }
  if (res.status === 503) {
    await res.arrayBuffer().catch(() => undefined);
    if (!/^\d+$/.test(res.headers.get('retry-after') ?? '')) throw new Error(`a 503 from ${url} without Retry-After`);
    throw new Unavailable(`${url} answered 503`);
  }
  return res;
}

/** Counts an unknown outcome's 503 in the ledger. */
const noteUnavailable = (err: unknown, ledger: Ledger): void => {
  if (err instanceof Unavailable) ledger.unavailable++;
};

/** Reads the body; a body cut off by the crash is as unknown as no answer at all. */
async function text(res: Response): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    throw new Lost((err as Error).message);
  }
}

export async function registerClient(baseUrl: Target, ledger: Ledger): Promise<string | undefined> {
  let res: Response;
  try {
    res = await call(`${at(baseUrl)}/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(REGISTRATION) });
    const body = await text(res);
    if (res.status !== 201) throw new Error(`registration answered ${res.status}: ${body}`);
    const clientId = (JSON.parse(body) as { client_id: string }).client_id;
    ledger.clients.push(clientId);
    return clientId;
  } catch (err) {
    if (err instanceof Lost) {
      noteUnavailable(err, ledger);
      ledger.unknownRegistrations++;
      return undefined;
    }
    throw err;
  }
}

/** Consent page, PIN, approve: the code from the redirect (codes are not counted: they are not tokens). */
export async function authorize(baseUrl: Target, clientId: string): Promise<{ code: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    state: 's',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const page = await call(`${at(baseUrl)}/authorize?${query.toString()}`, { method: 'GET' });
  const html = await text(page);
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}`);
  const csrf = /latchkey_csrf=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')?.[1];
  const consent = /name="consent" value="([^"]+)"/.exec(html)?.[1];
  if (!csrf || !consent) throw new Error('consent page without CSRF cookie or consent field');
  // On several instances, the approval may land on another than the page: they share the key.
  const approved = await call(`${at(baseUrl)}/authorize/consent`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `latchkey_csrf=${csrf}` },
    body: new URLSearchParams({ consent, pin: PIN, decision: 'approve' }).toString(),
  });
  await text(approved);
  const code = new URL(approved.headers.get('location') ?? 'x:/').searchParams.get('code');
  if (approved.status !== 303 || !code) throw new Error(`approval answered ${approved.status}`);
  return { code, verifier };
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

async function token(baseUrl: Target, form: Record<string, string>): Promise<Tokens> {
  const res = await call(`${at(baseUrl)}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
  const body = await text(res);
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${body}`);
  return JSON.parse(body) as Tokens;
}

/** Authorizes an acknowledged client and exchanges the code: a new chain when acknowledged. */
export async function exchangeCode(baseUrl: Target, ledger: Ledger, clientId: string): Promise<void> {
  let approval: { code: string; verifier: string };
  try {
    approval = await authorize(baseUrl, clientId);
  } catch (err) {
    if (err instanceof Lost) {
      noteUnavailable(err, ledger);
      return; // no token can have been issued yet
    }
    throw err;
  }
  try {
    const t = await token(baseUrl, {
      grant_type: 'authorization_code',
      code: approval.code,
      redirect_uri: REDIRECT_URI,
      code_verifier: approval.verifier,
      client_id: clientId,
    });
    ledger.chains.push({ clientId, accessTokens: [t.access_token], refreshToken: t.refresh_token, busy: false, lostRefreshes: 0 });
  } catch (err) {
    if (err instanceof Lost) {
      noteUnavailable(err, ledger);
      ledger.unknownIssuances++;
      return;
    }
    throw err;
  }
}

/** Refreshes a chain; an acknowledged refresh moves the chain to the new refresh token. */
export async function refreshChain(baseUrl: Target, ledger: Ledger, chain: Chain): Promise<void> {
  chain.busy = true;
  try {
    const t = await token(baseUrl, { grant_type: 'refresh_token', refresh_token: chain.refreshToken, client_id: chain.clientId });
    chain.accessTokens.push(t.access_token);
    chain.refreshToken = t.refresh_token;
  } catch (err) {
    if (!(err instanceof Lost)) throw err;
    noteUnavailable(err, ledger);
    ledger.unknownIssuances++;
    chain.lostRefreshes++;
  } finally {
    chain.busy = false;
  }
}

/** Runs `workers` loops of mixed operations until `stop()` says so; resolves when all ended. */
export async function runLoad(baseUrl: Target, ledger: Ledger, workers: number, stop: () => boolean): Promise<void> {
  const worker = async (n: number): Promise<void> => {
    let seen = ledger.unavailable;
    for (let i = 0; !stop(); i++) {
      // After a 503, wait a moment as a client honouring Retry-After would (scaled down), so
      // an outage is not a busy loop.
      const refused = ledger.unavailable;
      if (i > 0 && refused > seen) await new Promise((r) => setTimeout(r, 20));
      seen = refused;
      const pick = (n + i) % 3;
      if (pick === 0 || ledger.clients.length === 0) {
        await registerClient(baseUrl, ledger);
      } else if (pick === 1 || ledger.chains.length === 0) {
        const clientId = ledger.clients[Math.floor(Math.random() * ledger.clients.length)] ?? '';
        await exchangeCode(baseUrl, ledger, clientId);
      } else {
        const idle = ledger.chains.filter((c) => !c.busy);
        const chain = idle[Math.floor(Math.random() * idle.length)];
        if (chain) await refreshChain(baseUrl, ledger, chain);
        else await registerClient(baseUrl, ledger);
      }
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, n) => worker(n).catch((err: unknown) => {
    // A daemon that is gone refuses connections: that ends the worker, not the test.
    if (!(err instanceof Lost)) throw err;
  })));
}

export async function introspect(baseUrl: string, tokenValue: string): Promise<boolean> {
  const res = await fetch(`${baseUrl}/introspect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INTROSPECTION_SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tokenValue }).toString(),
  });
  return ((await res.json()) as { active: boolean }).active;
}

/** Whether the daemon knows the client: a bogus code is invalid_grant for it, invalid_client otherwise. */
export async function clientKnown(baseUrl: string, clientId: string): Promise<boolean> {
  const res = await fetch(`${baseUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'bogus', code_verifier: 'x'.repeat(43), redirect_uri: REDIRECT_URI, client_id: clientId }).toString(),
  });
  const body = (await res.json()) as { error: string };
  return body.error === 'invalid_grant';
}

export async function stats(baseUrl: string): Promise<{ clients: number; access_tokens: number; refresh_tokens: number }> {
  const res = await fetch(`${baseUrl}/oauth/stats`);
  return (await res.json()) as { clients: number; access_tokens: number; refresh_tokens: number };
}

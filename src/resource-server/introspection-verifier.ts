import { createHash } from 'node:crypto';
import { InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { sameResource } from '../oauth/resource.js';
import { IntrospectionCache } from './introspection-cache.js';

export interface IntrospectionVerifierOptions {
  /** Latchkey's issuer, exactly as in its metadata (e.g. https://auth.example.com, no trailing slash). */
  issuer: string;
  /** This MCP server's own URL, one of Latchkey's OAUTH_RESOURCES; tokens for any other audience are refused. */
  resource: string;
  /** The value of OAUTH_INTROSPECTION_SECRET on the Latchkey side. */
  introspectionSecret: string;
  /** Defaults to `${issuer}/introspect`; set it when the MCP server reaches Latchkey by another address. */
  introspectionEndpoint?: string;
  /** How long an answer is reused, in seconds (default and maximum 60; 0 asks Latchkey every time). */
  cacheMaxAgeSeconds?: number;
  /** Upper bound on cached answers (default 10 000). */
  cacheMaxEntries?: number;
  /** How long to wait for Latchkey (default 5000 ms). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /**
   * Receives the reason when Latchkey cannot answer (unreachable, secret refused, bad reply).
   * The caller of the MCP server only ever sees "authorization server unavailable": the SDK
   * sends a ServerError's message to whoever made the request, authenticated or not.
   */
  onError?: (detail: string) => void;
  /** Epoch milliseconds; injected by tests. */
  now?: () => number;
}

/** The part of an RFC 7662 §2.2 answer a resource server relies on. */
export type Introspection =
  | { active: false }
  | {
      active: true;
      clientId: string;
      scopes: string[];
      exp: number;
      aud: string[];
      iss?: string;
      /** Who the token acts for: a person's subject (`oidc:…`, `github:…`) when they signed in with a provider. */
      sub?: string;
      /** That person's e-mail (else name), for display and logs. */
      username?: string;
    };

export const MAX_CACHE_AGE_SECONDS = 60;

/**
 * Reads an introspection response. Anything that is not a well-formed active answer with
 * client_id and exp counts as inactive: a resource server must fail closed.
 */
export function parseIntrospection(body: unknown): Introspection {
  if (typeof body !== 'object' || body === null) return { active: false };
  const b = body as Record<string, unknown>;
  if (b.active !== true || typeof b.client_id !== 'string' || typeof b.exp !== 'number') return { active: false };
  // RFC 7662 §2.2: aud may be a string or an array of strings (RFC 7519 §4.1.3).
  const aud = typeof b.aud === 'string' ? [b.aud] : Array.isArray(b.aud) ? b.aud.filter((a): a is string => typeof a === 'string') : [];
  return {
    active: true,
    clientId: b.client_id,
    scopes: typeof b.scope === 'string' ? b.scope.split(' ').filter((s) => s.length > 0) : [],
    exp: b.exp,
    aud,
    ...(typeof b.iss === 'string' ? { iss: b.iss } : {}),
    ...(typeof b.sub === 'string' ? { sub: b.sub } : {}),
    ...(typeof b.username === 'string' ? { username: b.username } : {}),
  };
}

/**
 * An `OAuthTokenVerifier` for the MCP SDK's `requireBearerAuth`: asks Latchkey's
 * /introspect (RFC 7662) whether a token is live, then checks what the MCP authorization
 * spec asks of a resource server: the token must have been issued for this server
 * (audience, RFC 8707 §2), by this issuer, and not be expired.
 */
export class IntrospectionTokenVerifier implements OAuthTokenVerifier {
  private readonly endpoint: string;
  private readonly cache: IntrospectionCache<Introspection>;
  private readonly inFlight = new Map<string, Promise<Introspection>>();
  private readonly fetchFn: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly options: IntrospectionVerifierOptions) {
    this.endpoint = options.introspectionEndpoint ?? `${options.issuer}/introspect`;
    this.fetchFn = options.fetch ?? fetch;
    this.now = options.now ?? Date.now;
    const maxAge = Math.min(options.cacheMaxAgeSeconds ?? MAX_CACHE_AGE_SECONDS, MAX_CACHE_AGE_SECONDS);
    this.cache = new IntrospectionCache<Introspection>({
      maxAgeMs: Math.max(0, maxAge) * 1000,
      maxEntries: options.cacheMaxEntries ?? 10_000,
      now: this.now,
      expiresAt: (value) => (value.active ? value.exp * 1000 : undefined),
    });
  }

  async verifyAccessToken(token: string): Promise<AuthInfo> {
    const result = await this.introspect(token);
    if (!result.active) throw new InvalidTokenError('The access token is expired, revoked or unknown');
    if (result.exp * 1000 <= this.now()) throw new InvalidTokenError('The access token has expired');
    if (result.iss !== undefined && result.iss !== this.options.issuer) {
      throw new InvalidTokenError('The access token was issued by another authorization server');
    }
    const audience = result.aud.find((a) => sameResource(a, this.options.resource));
    if (audience === undefined) throw new InvalidTokenError('The access token was issued for another resource');
    return {
      token,
      clientId: result.clientId,
      scopes: result.scopes,
      expiresAt: result.exp,
      resource: new URL(audience),
      // Who the call acts for (issue 12): `sub` and `username` as introspection gave them.
      extra: {
        ...(result.sub !== undefined ? { sub: result.sub } : {}),
        ...(result.username !== undefined ? { username: result.username } : {}),
        iss: result.iss ?? this.options.issuer,
      },
    };
  }

  /** One introspection per token at a time, reused from the cache when fresh enough. */
  private introspect(token: string): Promise<Introspection> {
    const key = createHash('sha256').update(token, 'utf8').digest('base64url');
    const cached = this.cache.get(key);
    if (cached) return Promise.resolve(cached);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    const request = this.ask(token)
      .then((result) => {
        this.cache.set(key, result);
        return result;
      })
      .finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, request);
    return request;
  }

  private async ask(token: string): Promise<Introspection> {
    let response: Response;
    try {
      response = await this.fetchFn(this.endpoint, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.options.introspectionSecret}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
        redirect: 'error',
      });
    } catch (err) {
      throw this.unavailable(`could not reach the introspection endpoint ${this.endpoint}: ${(err as Error).message}`);
    }
    if (response.status === 401) {
      throw this.unavailable('the authorization server refused the introspection secret: check OAUTH_INTROSPECTION_SECRET on both sides');
    }
    if (!response.ok) throw this.unavailable(`introspection failed with HTTP ${response.status}`);
    try {
      return parseIntrospection(await response.json());
    } catch {
      throw this.unavailable('the introspection response was not JSON');
    }
  }

  private unavailable(detail: string): ServerError {
    this.options.onError?.(detail);
    return new ServerError('Authorization server unavailable');
  }
}

import { sameResource } from '../oauth/resource.js';
import type { AccessTokenVerifier, VerifiedToken } from './verified-token.js';

/** The resource a gateway server protects, as the bearer check needs it. */
export interface ProtectedTarget {
  /** The issuer + path: what tokens for this server carry as audience (RFC 8707). */
  resource: string;
  scopes: readonly string[];
  /** Where its RFC 9728 metadata is, for WWW-Authenticate. */
  metadataUrl: string;
}

export type AccessOutcome =
  | { ok: true; token: VerifiedToken }
  | { ok: false; status: 401 | 403; challenge: string; error: string; description: string };

/** RFC 6750 §2.1: the Bearer scheme, then a b64token (token68 of RFC 9110 §11.2). */
const BEARER_SCHEME = /^Bearer(?: |$)/i;
const BEARER_TOKEN = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

/**
 * RFC 6750 §3 with RFC 9728 §5.1: who may call a gateway server. A request without
 * authentication information is a bare 401 naming the metadata (so clients can discover
 * Latchkey); RFC 6750 §3.1 counts a request using another scheme (Basic, …) as one, and says
 * it gets no error code. A Bearer token that is malformed, unknown, expired, revoked or for
 * another resource is `invalid_token`; one without the server's scopes is a 403
 * `insufficient_scope` listing them.
 */
export async function checkAccess(authorization: string | undefined, target: ProtectedTarget, verify: AccessTokenVerifier): Promise<AccessOutcome> {
  const metadata = `resource_metadata="${target.metadataUrl}"`;
  if (authorization === undefined || !BEARER_SCHEME.test(authorization)) {
    return { ok: false, status: 401, challenge: `Bearer ${metadata}`, error: 'invalid_token', description: 'An access token is required' };
  }
  const invalid = (description: string): AccessOutcome => ({
    ok: false,
    status: 401,
    challenge: `Bearer error="invalid_token", error_description="${description}", ${metadata}`,
    error: 'invalid_token',
    description,
  });
  const token = BEARER_TOKEN.exec(authorization)?.[1];
  if (token === undefined) return invalid('The access token is malformed');
  const verified = await verify(token);
  if (!verified) return invalid('The access token is unknown, expired or revoked');
  // A token is good only for the server it was issued for: one for server A never opens B.
  if (!sameResource(verified.resource, target.resource)) return invalid('The access token was issued for another resource');
  const missing = target.scopes.filter((s) => !verified.scopes.includes(s));
  if (missing.length > 0) {
    const scope = target.scopes.join(' ');
    return {
      ok: false,
      status: 403,
      challenge: `Bearer error="insufficient_scope", scope="${scope}", ${metadata}`,
      error: 'insufficient_scope',
      description: `The access token lacks the scope ${missing.join(' ')}`,
    };
  }
  return { ok: true, token: verified };
}

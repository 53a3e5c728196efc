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

/**
 * RFC 6750 §3 with RFC 9728 §5.1: who may call a gateway server. No token is a bare 401
 * naming the metadata (so clients can discover Latchkey); a token that is unknown, expired,
 * revoked or for another resource is `invalid_token`; one without the server's scopes is a
 * 403 `insufficient_scope` listing them.
 */
export async function checkAccess(authorization: string | undefined, target: ProtectedTarget, verify: AccessTokenVerifier): Promise<AccessOutcome> {
  const metadata = `resource_metadata="${target.metadataUrl}"`;
  const token = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(authorization ?? '')?.[1];
  if (token === undefined) {
    return { ok: false, status: 401, challenge: `Bearer ${metadata}`, error: 'invalid_token', description: 'An access token is required' };
  }
  const invalid = (description: string): AccessOutcome => ({
    ok: false,
    status: 401,
    challenge: `Bearer error="invalid_token", error_description="${description}", ${metadata}`,
    error: 'invalid_token',
    description,
  });
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

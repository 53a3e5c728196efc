import { toEpochSeconds } from '../clock.js';
import { hashSecret, secretMatcher } from '../crypto/secrets.js';
import { approverLabel } from './approver.js';
import { parseBasicAuth } from './client-auth.js';
import type { OAuthContext } from './context.js';
import { invalidRequest } from './errors.js';
import { formatScope } from './scopes.js';

export type IntrospectionResponse =
  | { active: false }
  | {
      active: true;
      client_id: string;
      scope: string;
      aud: string;
      iss: string;
      exp: number;
      iat: number;
      token_type: 'Bearer';
      sub: string;
      /** Who approved the grant, for people: their e-mail, else their name (sign-in by a provider only). */
      username?: string;
    };

/**
 * RFC 7662 §2.2 for access tokens. Refresh tokens are never presented to resource servers,
 * so they introspect as inactive. `aud` is the resource the token was bound to (RFC 8707);
 * resource servers must compare it with their own URL. `sub` is the person who approved the
 * grant when they signed in with a provider (`oidc:…`, `github:…`), with `username`; with the
 * PIN there is one owner, and `sub` is the grant id, which tells grants apart without
 * revealing anything.
 */
export async function introspectToken(ctx: OAuthContext, params: { token?: string }): Promise<IntrospectionResponse> {
  if (params.token === undefined) throw invalidRequest('The token parameter is required');
  const token = await ctx.store.getAccessToken(hashSecret(params.token), ctx.clock.now());
  if (!token) return { active: false };
  return {
    active: true,
    client_id: token.clientId,
    scope: formatScope(token.scopes),
    aud: token.resource,
    iss: ctx.issuer,
    exp: toEpochSeconds(token.expiresAt),
    iat: toEpochSeconds(token.issuedAt),
    token_type: 'Bearer',
    sub: token.approvedBy?.subject ?? token.grantId,
    ...(token.approvedBy !== undefined ? { username: approverLabel(token.approvedBy) } : {}),
  };
}

/**
 * Whether an Authorization header proves OAUTH_INTROSPECTION_SECRET: as a Bearer token, or as
 * the password of Basic authentication (what Python SDK verifiers send). Always false when
 * introspection is off. Compared in constant time.
 */
export function resourceServerAuthenticator(secret: string | undefined): (authorization: string | undefined) => boolean {
  if (!secret) return () => false;
  const matches = secretMatcher(secret);
  return (header) => {
    if (!header) return false;
    const bearer = /^Bearer\s+(.+)$/i.exec(header);
    if (bearer?.[1]) return matches(bearer[1].trim());
    try {
      const basic = parseBasicAuth(header);
      return basic !== undefined && matches(basic.clientSecret);
    } catch {
      return false;
    }
  };
}

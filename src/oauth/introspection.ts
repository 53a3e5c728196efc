import { toEpochSeconds } from '../clock.js';
import type { OAuthContext } from './context.js';
import { invalidRequest } from './errors.js';
import { formatScope } from './scopes.js';
import { hashSecret } from './secrets.js';

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
    };

/**
 * RFC 7662 §2.2 for access tokens. Refresh tokens are never presented to resource servers,
 * so they introspect as inactive. `aud` is the resource the token was bound to (RFC 8707);
 * resource servers must compare it with their own URL.
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
    iss: ctx.config.issuer,
    exp: toEpochSeconds(token.expiresAt),
    iat: toEpochSeconds(token.issuedAt),
    token_type: 'Bearer',
    // There is one owner; the grant id tells grants apart without revealing anything.
    sub: token.grantId,
  };
}

import type { AccessTokenRecord, Approver, ClientRecord, RefreshTokenRecord } from '../store/types.js';
import type { OAuthContext } from './context.js';
import { formatScope } from './scopes.js';
import { hashSecret, newSecret } from '../crypto/secrets.js';

/** RFC 6749 §5.1. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

export interface IssuedTokens {
  access: AccessTokenRecord;
  refresh: RefreshTokenRecord | undefined;
  response: TokenResponse;
}

/**
 * Mints an access token (and a refresh token when the client registered that grant) for a
 * grant. Tokens are opaque 256-bit random strings; only their hashes are returned for storage.
 * Every token carries who approved the grant, so introspection can say who it acts for.
 */
export function mintTokens(
  ctx: OAuthContext,
  client: ClientRecord,
  grant: { grantId: string; scopes: string[]; resource: string; approvedBy?: Approver | undefined },
): IssuedTokens {
  const now = ctx.clock.now();
  const accessToken = newSecret(ctx.random);
  const ttlMs = ctx.tokens.accessTtlMs;
  const access: AccessTokenRecord = {
    hash: hashSecret(accessToken),
    clientId: client.clientId,
    grantId: grant.grantId,
    scopes: grant.scopes,
    resource: grant.resource,
    issuedAt: now,
    expiresAt: now + ttlMs,
    ...(grant.approvedBy !== undefined ? { approvedBy: grant.approvedBy } : {}),
  };
  const response: TokenResponse = {
    access_token: accessToken,
    token_type: 'Bearer',
    // RFC 6749 §5.1: whole seconds on the wire.
    expires_in: Math.max(1, Math.round(ttlMs / 1000)),
    scope: formatScope(grant.scopes),
  };
  let refresh: RefreshTokenRecord | undefined;
  if (client.metadata.grant_types.includes('refresh_token')) {
    const refreshToken = newSecret(ctx.random);
    refresh = { ...access, hash: hashSecret(refreshToken), expiresAt: now + ctx.tokens.refreshTtlMs };
    response.refresh_token = refreshToken;
  }
  return { access, refresh, response };
}

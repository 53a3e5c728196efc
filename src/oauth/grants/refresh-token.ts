import { grantRevoked } from '../../audit/audit-events.js';
import { hashSecret } from '../../crypto/secrets.js';
import type { ClientRecord } from '../../store/types.js';
import { approverStillAllowed } from '../approver.js';
import type { OAuthContext } from '../context.js';
import { invalidGrant, invalidRequest, unauthorizedClient } from '../errors.js';
import { checkBoundResource } from '../resource.js';
import { narrowScopes } from '../scopes.js';
import { mintTokens, type TokenResponse } from '../token-issuer.js';
import type { Grant } from './grant.js';

/**
 * How long a rotated refresh token is remembered after rotation. Reuse within this time is
 * recognised as theft and revokes the grant; later it is simply unknown. Without a bound the
 * store would keep one dead token per hourly refresh for the whole refresh lifetime.
 */
export const ROTATED_TOKEN_RETENTION_MS = 24 * 3_600_000;

export interface RefreshParams {
  refresh_token?: string;
  scope?: string;
  resource?: string;
}

/**
 * RFC 6749 §6 with rotation (OAuth 2.1 §4.3.1, RFC 9700 §4.14.2). Every refresh yields a new
 * refresh token. The one just rotated still works for OAUTH_REFRESH_REUSE_GRACE seconds,
 * because hosts such as Claude Code refresh from several processes at once; reuse after that
 * means the token leaked, and the whole grant is revoked.
 *
 * A grant approved by a person who signed in is judged again against the allow-lists as they
 * are now: someone removed from them gets invalid_grant and loses the grant, so their access
 * ends within one access-token lifetime (issue 12).
 */
export async function refreshAccessToken(
  ctx: OAuthContext,
  client: ClientRecord,
  params: RefreshParams,
): Promise<TokenResponse> {
  if (!params.refresh_token) throw invalidRequest('The refresh_token parameter is required');
  if (!client.metadata.grant_types.includes('refresh_token')) {
    throw unauthorizedClient('This client did not register the refresh_token grant');
  }
  const hash = hashSecret(params.refresh_token);
  const now = ctx.clock.now();
  const token = await ctx.store.getRefreshToken(hash, now);
  if (!token) throw invalidGrant('The refresh token is unknown, expired or revoked; authorize again');
  if (token.clientId !== client.clientId) throw invalidGrant('The refresh token was issued to another client');
  checkBoundResource(params.resource, token.resource);
  const scopes = narrowScopes(params.scope, token.scopes);
  if (token.approvedBy !== undefined && !approverStillAllowed(token.approvedBy, ctx.accessPolicy).allowed) {
    const removed = await ctx.store.revokeGrant(token.grantId);
    await ctx.audit.record(
      grantRevoked({ actor: 'system', reason: 'allow-list-removal', clientId: client.clientId, clientName: client.metadata.client_name, grantId: token.grantId, person: token.approvedBy }),
    );
    ctx.logger.warn({ clientId: client.clientId, grantId: token.grantId, subject: token.approvedBy.subject, removed }, 'approver no longer on the allow-lists: grant revoked');
    throw invalidGrant('The person who approved this connection is no longer allowed to connect; this grant is revoked');
  }

  // The grant keeps its full scope: a narrowed access token does not shrink later refreshes.
  const issued = mintTokens(ctx, client, { grantId: token.grantId, scopes, resource: token.resource, approvedBy: token.approvedBy });
  const successor = issued.refresh && { ...issued.refresh, scopes: token.scopes };
  if (!successor) throw unauthorizedClient('This client did not register the refresh_token grant');

  const graceMs = ctx.tokens.refreshReuseGraceMs;
  const retainUntil = now + Math.max(ROTATED_TOKEN_RETENTION_MS, graceMs);
  const previous = await ctx.store.rotateRefreshToken(hash, now, retainUntil, { access: issued.access, refresh: successor });
  if (!previous) throw invalidGrant('The refresh token is unknown, expired or revoked; authorize again');

  if (previous.rotatedAt !== undefined) {
    // A grace of 0 means strict one-shot rotation: even a replay in the same millisecond
    // as the rotation is reuse (comparing the elapsed time alone would let it through).
    if (graceMs === 0 || now - previous.rotatedAt > graceMs) {
      const removed = await ctx.store.revokeGrant(token.grantId);
      await ctx.audit.record(
        grantRevoked({ actor: 'system', reason: 'refresh-reuse', clientId: client.clientId, clientName: client.metadata.client_name, grantId: token.grantId, person: token.approvedBy }),
      );
      ctx.observer?.grantRevoked('refresh_reuse');
      ctx.logger.warn({ clientId: client.clientId, grantId: token.grantId, removed }, 'rotated refresh token reused: grant revoked');
      throw invalidGrant('The refresh token was already used; this grant is revoked, authorize again');
    }
    // Within the grace window: a sibling process of the same host refreshing concurrently.
    await ctx.store.putTokens(issued.access, successor);
  }
  ctx.store.touchClient(client.clientId, now);
  ctx.observer?.tokensIssued('refresh_token');
  return issued.response;
}

export const refreshTokenGrant: Grant<keyof RefreshParams> = {
  type: 'refresh_token',
  parameters: ['refresh_token', 'scope', 'resource'],
  handle: refreshAccessToken,
};

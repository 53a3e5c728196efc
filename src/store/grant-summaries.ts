import type { Approver, GrantSummary } from './types.js';

/** A live token as its grant's summary sees it (an access token, or a refresh token not yet rotated). */
export interface GrantToken extends Pick<GrantSummary, 'grantId' | 'clientId' | 'scopes' | 'resource' | 'issuedAt' | 'expiresAt'> {
  approvedBy?: Approver | undefined;
  /** An access token (counted in `accessTokens`), or a refresh token (makes the grant refreshable). */
  access: boolean;
}

/**
 * Folds live tokens into one summary per grant, oldest grant first: what every backend's
 * `listGrants` returns, whichever way it found the tokens. The grant was issued with its
 * oldest token and lasts as long as its last one; a refresh token makes it refreshable.
 */
export function summarizeGrants(tokens: Iterable<GrantToken>): GrantSummary[] {
  const grants = new Map<string, GrantSummary>();
  for (const token of tokens) {
    const grant = grants.get(token.grantId) ?? {
      grantId: token.grantId,
      clientId: token.clientId,
      scopes: token.scopes,
      resource: token.resource,
      issuedAt: token.issuedAt,
      expiresAt: token.expiresAt,
      accessTokens: 0,
      refreshable: false,
    };
    if (grant.approvedBy === undefined && token.approvedBy !== undefined) grant.approvedBy = token.approvedBy;
    grant.issuedAt = Math.min(grant.issuedAt, token.issuedAt);
    grant.expiresAt = Math.max(grant.expiresAt, token.expiresAt);
    if (token.access) grant.accessTokens++;
    else grant.refreshable = true;
    grants.set(token.grantId, grant);
  }
  return [...grants.values()].sort((a, b) => a.issuedAt - b.issuedAt);
}

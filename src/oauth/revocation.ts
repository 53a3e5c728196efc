import { grantRevoked } from '../audit/audit-events.js';
import type { ClientRecord } from '../store/types.js';
import type { OAuthContext } from './context.js';
import { invalidRequest } from './errors.js';
import { hashSecret } from '../crypto/secrets.js';

/**
 * RFC 7009. Unknown tokens and tokens of other clients are answered like a success
 * (§2.2), so the endpoint reveals nothing; only the owning client's tokens are revoked.
 * Revoking a refresh token revokes its whole grant (§2.1); an access token goes alone.
 */
export async function revokeToken(
  ctx: OAuthContext,
  client: ClientRecord,
  params: { token?: string; token_type_hint?: string },
  /** The caller's address, for the audit log. */
  ip?: string,
): Promise<void> {
  if (!params.token) throw invalidRequest('The token parameter is required');
  const hash = hashSecret(params.token);
  const now = ctx.clock.now();
  // The hint only orders the lookups (§2.1); an unknown hint is ignored.
  const refreshFirst = params.token_type_hint === 'refresh_token';
  const lookups = [
    async (): Promise<boolean> => {
      const refresh = await ctx.store.getRefreshToken(hash, now);
      if (!refresh) return false;
      if (refresh.clientId === client.clientId) {
        await ctx.store.revokeGrant(refresh.grantId);
        await ctx.audit.record(
          grantRevoked({ actor: 'client', reason: 'revocation-endpoint', clientId: client.clientId, clientName: client.metadata.client_name, grantId: refresh.grantId, person: refresh.approvedBy, ip }),
        );
        ctx.observer?.grantRevoked('client_request');
      }
      return true;
    },
    async (): Promise<boolean> => {
      const access = await ctx.store.getAccessToken(hash, now);
      if (!access) return false;
      if (access.clientId === client.clientId && (await ctx.store.deleteAccessToken(hash))) {
        await ctx.audit.record(
          grantRevoked({
            actor: 'client',
            reason: 'revocation-endpoint',
            clientId: client.clientId,
            clientName: client.metadata.client_name,
            grantId: access.grantId,
            person: access.approvedBy,
            ip,
            what: 'access-token',
          }),
        );
      }
      return true;
    },
  ];
  if (!refreshFirst) lookups.reverse();
  for (const lookup of lookups) if (await lookup()) return;
}

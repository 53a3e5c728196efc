import { hashSecret } from '../crypto/secrets.js';
import { approverLabel, trustedEmail } from '../oauth/approver.js';
import type { Store } from '../store/types.js';
import type { AccessTokenVerifier } from './verified-token.js';

/**
 * Checks bearer tokens in process, against the same store /introspect reads: no round trip,
 * and a revoked token fails on its very next use. The person who approved the grant (when
 * they signed in with a provider) becomes the identity the upstream is told about.
 */
export function storeTokenVerifier(store: Pick<Store, 'getAccessToken' | 'getClient'>, clock: { now(): number }): AccessTokenVerifier {
  return async (token) => {
    const record = await store.getAccessToken(hashSecret(token), clock.now());
    if (!record) return undefined;
    const name = (await store.getClient(record.clientId))?.metadata.client_name;
    return {
      clientId: record.clientId,
      grantId: record.grantId,
      ...(name !== undefined ? { clientName: name } : {}),
      scopes: record.scopes,
      resource: record.resource,
      ...(record.approvedBy !== undefined
        ? {
            subject: record.approvedBy.subject,
            ...(trustedEmail(record.approvedBy) !== undefined ? { email: trustedEmail(record.approvedBy) } : {}),
            username: approverLabel(record.approvedBy),
          }
        : {}),
    };
  };
}

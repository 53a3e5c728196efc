import type { AccessTokenRecord, ClientRecord, RefreshTokenRecord } from '../../src/store/types.js';

/** Store records as the daemon writes them, for tests that need data on disk. */
export function clientRecord(clientId: string, name: string, now = Date.now()): ClientRecord {
  return {
    clientId,
    issuedAt: now,
    metadata: {
      client_name: name,
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
  };
}

export function tokenPair(
  clientId: string,
  grantId: string,
  accessHash: string,
  refreshHash: string,
  now = Date.now(),
): { access: AccessTokenRecord; refresh: RefreshTokenRecord } {
  const base = { clientId, grantId, scopes: ['mcp'], resource: 'https://mcp.example.com/mcp', issuedAt: now };
  return {
    access: { ...base, hash: accessHash, expiresAt: now + 3_600_000 },
    refresh: { ...base, hash: refreshHash, expiresAt: now + 30 * 86_400_000 },
  };
}

import type { Config } from '../config.js';
import { CLIENT_AUTH_METHODS } from '../store/types.js';
import { advertisedEndpoints } from './endpoints.js';
import { GRANT_TYPES } from './grants/index.js';

/**
 * RFC 8414 §2 authorization server metadata, derived from the tables of endpoints, grants and
 * client authentication methods, so what is advertised is what is served. The issuer string
 * is used exactly as configured.
 */
export function authorizationServerMetadata(config: Pick<Config, 'issuer' | 'scopes' | 'cimd'>): Record<string, unknown> {
  return {
    issuer: config.issuer,
    ...advertisedEndpoints(config.issuer),
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: GRANT_TYPES,
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
    scopes_supported: config.scopes.valid,
    authorization_response_iss_parameter_supported: true,
    // Advertised only when on: clients then send their document URL instead of registering.
    ...(config.cimd.enabled ? { client_id_metadata_document_supported: true } : {}),
  };
}

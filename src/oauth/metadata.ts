import type { Config } from '../config.js';

/** RFC 8414 §2 authorization server metadata. The issuer string is used exactly as configured. */
export function authorizationServerMetadata(config: Config): Record<string, unknown> {
  const base = config.issuer;
  return {
    issuer: base,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    registration_endpoint: `${base}/register`,
    revocation_endpoint: `${base}/revoke`,
    introspection_endpoint: `${base}/introspect`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
    scopes_supported: config.validScopes,
    authorization_response_iss_parameter_supported: true,
    // Advertised only when on: clients then send their document URL instead of registering.
    ...(config.cimdEnabled ? { client_id_metadata_document_supported: true } : {}),
  };
}

import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import type { RequestHandler } from 'express';
import { IntrospectionTokenVerifier, type IntrospectionVerifierOptions } from './introspection-verifier.js';
import { protectedResourceMetadataUrl } from './protected-resource-metadata.js';

export interface LatchkeyBearerAuthOptions extends IntrospectionVerifierOptions {
  /** Scopes every request must carry; a token without them gets 403 insufficient_scope. */
  requiredScopes?: string[];
}

/**
 * The MCP SDK's `requireBearerAuth`, wired to Latchkey: tokens are checked by introspection,
 * and a 401 carries `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1) so
 * MCP clients can discover Latchkey from a bare 401.
 */
export function latchkeyBearerAuth(options: LatchkeyBearerAuthOptions): RequestHandler {
  return requireBearerAuth({
    verifier: new IntrospectionTokenVerifier(options),
    resourceMetadataUrl: protectedResourceMetadataUrl(options.resource),
    ...(options.requiredScopes ? { requiredScopes: options.requiredScopes } : {}),
  });
}

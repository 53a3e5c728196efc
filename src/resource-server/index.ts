/**
 * What an MCP server needs to trust Latchkey, published as `latchkey/resource-server`:
 * a token verifier for the MCP SDK's `requireBearerAuth`, and RFC 9728 metadata.
 */
export { latchkeyBearerAuth, type LatchkeyBearerAuthOptions } from './bearer-auth.js';
export {
  IntrospectionTokenVerifier,
  MAX_CACHE_AGE_SECONDS,
  parseIntrospection,
  type Introspection,
  type IntrospectionVerifierOptions,
} from './introspection-verifier.js';
export {
  protectedResourceMetadata,
  protectedResourceMetadataRouter,
  protectedResourceMetadataUrl,
  type ProtectedResourceOptions,
} from './protected-resource-metadata.js';

import type { ClientRecord } from '../../store/types.js';
import type { OAuthContext } from '../context.js';
import type { TokenResponse } from '../token-issuer.js';

/**
 * One grant type of the token endpoint (RFC 6749 §4), as a plug-in: its `grant_type` value,
 * the body parameters it reads, and its handler. The token route, the metadata, client
 * registration and client metadata documents all read the list in ./index.ts, so adding a
 * grant is adding a module there (the idea comes from node-oidc-provider).
 */
export interface Grant<P extends string = string> {
  readonly type: string;
  /** The body parameters it reads; each may be sent at most once (RFC 6749 §3.2). */
  readonly parameters: readonly P[];
  /** Runs after client authentication. */
  handle(ctx: OAuthContext, client: ClientRecord, params: Partial<Record<P, string>>): Promise<TokenResponse>;
}

import { z } from 'zod';

/**
 * The records Latchkey keeps, as zod schemas with the TypeScript types inferred from them:
 * one definition that both backends share, and that the file backend checks every record
 * read from disk against. Times are epoch milliseconds. Credentials (codes, tokens, client
 * secrets) appear only as SHA-256 hashes: the raw values exist in the response to the client
 * and nowhere else.
 *
 * Unknown keys are accepted on read (a record written by a newer Latchkey still loads), and
 * the stored object is kept as read.
 */

const str = z.string();
const num = z.number();

/** The registered metadata, echoed back as registered (RFC 7591 §3.2.1). */
export const clientMetadataSchema = z.object({
  redirect_uris: z.array(str),
  token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'client_secret_post']),
  grant_types: z.array(str),
  response_types: z.array(str),
  client_name: str.optional(),
  client_uri: str.optional(),
  logo_uri: str.optional(),
  scope: str.optional(),
  contacts: z.array(str).optional(),
  tos_uri: str.optional(),
  policy_uri: str.optional(),
  software_id: str.optional(),
  software_version: str.optional(),
  application_type: z.enum(['web', 'native']).optional(),
});
export type ClientMetadata = z.infer<typeof clientMetadataSchema>;

export const clientSchema = z.object({
  clientId: str,
  /** Present only for confidential clients. */
  clientSecretHash: str.optional(),
  issuedAt: num,
  metadata: clientMetadataSchema,
  /** Last successful use at /token, for the owner's overview. */
  lastUsedAt: num.optional(),
});
export type ClientRecord = z.infer<typeof clientSchema>;

export const codeSchema = z.object({
  /** SHA-256 of the code. */
  hash: str,
  clientId: str,
  /** The grant (one owner approval) this code starts; every token it yields carries it. */
  grantId: str,
  redirectUri: str,
  codeChallenge: str,
  scopes: z.array(str),
  resource: str,
  issuedAt: num,
  expiresAt: num,
  /** Set when the code is exchanged. Kept, not deleted, so a replay is recognised (RFC 6749 §4.1.2). */
  consumedAt: num.optional(),
});
export type CodeRecord = z.infer<typeof codeSchema>;

export const accessTokenSchema = z.object({
  /** SHA-256 of the token. */
  hash: str,
  clientId: str,
  grantId: str,
  scopes: z.array(str),
  /** The audience (RFC 8707). */
  resource: str,
  issuedAt: num,
  expiresAt: num,
});
export type AccessTokenRecord = z.infer<typeof accessTokenSchema>;

export const refreshTokenSchema = accessTokenSchema.extend({
  /** Set when this token was exchanged for a new one; reuse is judged against it. */
  rotatedAt: num.optional(),
});
export type RefreshTokenRecord = z.infer<typeof refreshTokenSchema>;

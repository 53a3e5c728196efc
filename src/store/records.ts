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

/**
 * Who approved a grant, when sign-in by an identity provider is used: who they are, and what
 * the allow-lists judged them by, so that a refresh can judge them again without the person.
 */
export const approverSchema = z.object({
  /** The identity provider's stable subject identifier (OIDC `sub`, or the provider's user id). */
  subject: str,
  email: str.optional(),
  name: str.optional(),
  /** The provider they signed in with: 'oidc' or 'github'. */
  provider: str.optional(),
  /** Whether the provider vouched for `email`. */
  emailVerified: z.boolean().optional(),
  /** Their GitHub login at sign-in (GitHub only). */
  githubLogin: str.optional(),
  /** The allow-listed GitHub organisations they were an active member of at sign-in. */
  githubOrgs: z.array(str).optional(),
});
export type Approver = z.infer<typeof approverSchema>;

/**
 * How a client may authenticate at the token, revocation and introspection endpoints (RFC 7591
 * §2): the one list that registration, the metadata and the stored schema read.
 */
export const CLIENT_AUTH_METHODS = ['none', 'client_secret_basic', 'client_secret_post'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

/** The registered metadata, echoed back as registered (RFC 7591 §3.2.1). */
export const clientMetadataSchema = z.object({
  redirect_uris: z.array(str),
  token_endpoint_auth_method: z.enum(CLIENT_AUTH_METHODS),
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
  /** When the owner first approved this client; set once, never set back. Its redirect URIs are trusted from then on, and it never expires as unused. */
  approvedAt: num.optional(),
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
  /** Who approved it; copied by the callers to the tokens it yields. */
  approvedBy: approverSchema.optional(),
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
  approvedBy: approverSchema.optional(),
});
export type AccessTokenRecord = z.infer<typeof accessTokenSchema>;

export const refreshTokenSchema = accessTokenSchema.extend({
  /** Set when this token was exchanged for a new one; reuse is judged against it. */
  rotatedAt: num.optional(),
});
export type RefreshTokenRecord = z.infer<typeof refreshTokenSchema>;

/** One entry of the key-value store (see KeyValueStore in types.ts). */
export const kvEntrySchema = z.object({
  namespace: str,
  key: str,
  value: str,
  /** Null: never expires. */
  expiresAt: num.nullable(),
});
export type KvEntry = z.infer<typeof kvEntrySchema>;

/** One audit event (see AuditStore in types.ts). `detail` never holds a secret. */
export const auditEventSchema = z.object({
  /** Epoch ms, set by the caller. */
  at: num,
  /** e.g. 'client.registered', 'signin.failed', 'grant.revoked'. */
  type: str,
  /** Subject of who did it, 'pin', 'cli' or 'system'. */
  actor: str.optional(),
  /** The person concerned. */
  subject: str.optional(),
  clientId: str.optional(),
  clientName: str.optional(),
  ip: str.optional(),
  detail: z.record(str, z.union([str, num, z.boolean(), z.array(str)])).optional(),
});
export type AuditEvent = z.infer<typeof auditEventSchema>;

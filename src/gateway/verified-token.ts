/** What the gateway learns from a bearer token: enough to authorize the call and tell the upstream who calls. */
export interface VerifiedToken {
  clientId: string;
  /** The approval the token belongs to: the same across refreshes, different for every approval. */
  grantId: string;
  /** The registered client_name, when there is one. */
  clientName?: string;
  scopes: string[];
  /** The audience the token was issued for (RFC 8707). */
  resource: string;
  /** The person who approved the grant, when they signed in with an identity provider. */
  subject?: string;
  email?: string;
  /** What /introspect answers as their `username` (src/oauth/approver.ts approverLabel). */
  username?: string;
}

/** Checks a bearer token; undefined when it is unknown, expired or revoked. */
export type AccessTokenVerifier = (token: string) => Promise<VerifiedToken | undefined>;

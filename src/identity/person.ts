/**
 * Who signed in through a provider, as Latchkey records it on the grant they approve
 * (issue 12). Only `subject` identifies the person; the rest describes them.
 */
export interface Person {
  provider: LoginProviderId;
  /**
   * Stable across sessions and renames: `oidc:<issuer host and path>:<sub>` (OpenID Connect
   * Core §2: `sub` is unique only within its issuer) or `github:<numeric user id>`.
   */
  subject: string;
  /** The e-mail address the provider gave. Trust it only when `emailVerified` is true. */
  email?: string;
  /** True only when the provider vouched for `email` (see docs/identity.md, "Which e-mail is trusted"). */
  emailVerified: boolean;
  name?: string;
  githubLogin?: string;
  /** The allow-listed organisations the person is an active member of; looked up only when OAUTH_ALLOWED_GITHUB_ORGS is set. */
  githubOrgs?: string[];
}

export type LoginProviderId = 'oidc' | 'github';

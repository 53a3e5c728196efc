import type { Person } from './person.js';

/**
 * Who may connect after signing in, and who is an owner. Pure: the same person and policy
 * always give the same answer, so it is checked at every sign-in and can be re-checked at
 * every refresh. All entries are lower case (identity-config.ts normalises them).
 */
export interface AccessPolicy {
  /** OAUTH_ALLOWED_EMAILS: verified addresses, compared without regard to case. */
  emails: string[];
  /** OAUTH_ALLOWED_DOMAINS: the exact domain of a verified address (subdomains listed separately). */
  domains: string[];
  /** OAUTH_ALLOWED_GITHUB_USERS: GitHub logins. */
  githubUsers: string[];
  /** OAUTH_ALLOWED_GITHUB_ORGS: active membership in one of these organisations. */
  githubOrgs: string[];
  /** OAUTH_OWNER_EMAILS: may use /admin, and may always connect. */
  ownerEmails: string[];
}

export type AccessRefusalReason =
  /** The provider gave an address the lists name, but did not vouch for it. */
  | 'unverified-email'
  /** Nothing about the person is on a list. */
  | 'not-allowed';

export type AccessDecision = { allowed: true } | { allowed: false; reason: AccessRefusalReason; message: string };

const domainOf = (email: string): string => email.slice(email.lastIndexOf('@') + 1);

/** Whether an address, if it were verified, would let the person in. */
function emailMatches(email: string, policy: AccessPolicy): boolean {
  return policy.emails.includes(email) || policy.ownerEmails.includes(email) || policy.domains.includes(domainOf(email));
}

/** The person's address in lower case, only when the provider vouched for it. */
function verifiedEmail(person: Person): string | undefined {
  return person.emailVerified && person.email !== undefined ? person.email.toLowerCase() : undefined;
}

export function checkAccess(person: Person, policy: AccessPolicy): AccessDecision {
  const email = verifiedEmail(person);
  if (email !== undefined && emailMatches(email, policy)) return { allowed: true };
  if (person.provider === 'github') {
    const login = person.githubLogin?.toLowerCase();
    if (login !== undefined && policy.githubUsers.includes(login)) return { allowed: true };
    if (person.githubOrgs?.some((org) => policy.githubOrgs.includes(org.toLowerCase()))) return { allowed: true };
  }
  if (!person.emailVerified && person.email !== undefined && emailMatches(person.email.toLowerCase(), policy)) {
    return {
      allowed: false,
      reason: 'unverified-email',
      message: `Your provider has not verified the address ${person.email}, so it cannot be used to let you in. Verify it there and sign in again.`,
    };
  }
  const who = person.email ?? (person.githubLogin !== undefined ? `GitHub user ${person.githubLogin}` : 'This account');
  return {
    allowed: false,
    reason: 'not-allowed',
    message: `${who} is not on the list of people allowed to connect to this server. Ask its owner to add you.`,
  };
}

/** An owner may use /admin. Only a verified address makes one. */
export function isOwner(person: Person, policy: AccessPolicy): boolean {
  return isOwnerEmail(verifiedEmail(person), policy);
}

/**
 * Whether an address (verified when it was recorded, as a signed-in session's is) is on
 * OAUTH_OWNER_EMAILS; addresses compare without case.
 */
export function isOwnerEmail(email: string | undefined, policy: AccessPolicy): boolean {
  return email !== undefined && policy.ownerEmails.includes(email.toLowerCase());
}

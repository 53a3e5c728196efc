import { checkAccess, type AccessDecision, type AccessPolicy } from '../identity/access-policy.js';
import type { Person } from '../identity/person.js';
import type { Approver } from '../store/types.js';

/**
 * A person who signed in, as grants and tokens record them (issue 12, "Identity in tokens"):
 * the subject, the e-mail and name to show, and what the allow-lists judged them by, so that
 * every refresh can judge them again. The e-mail is recorded only when the provider vouched
 * for it (`emailVerified`: OpenID Connect Core §5.1 `email_verified`, GitHub's verified
 * primary address): anyone can type an address into a profile, and the recorded one becomes
 * introspection's `username`, the gateway's X-Latchkey-Email and the name on every page.
 */
export function approverOf(person: Person): Approver {
  return {
    subject: person.subject,
    ...(person.emailVerified && person.email !== undefined ? { email: person.email } : {}),
    ...(person.name !== undefined ? { name: person.name } : {}),
    provider: person.provider,
    emailVerified: person.emailVerified,
    ...(person.githubLogin !== undefined ? { githubLogin: person.githubLogin } : {}),
    ...(person.githubOrgs !== undefined ? { githubOrgs: person.githubOrgs } : {}),
  };
}

/** Whatever names a person on a page, in a grant or in a session. */
export type Labelled = Pick<Approver, 'subject' | 'email' | 'name' | 'githubLogin'> & { emailVerified?: boolean | undefined };

/**
 * The e-mail a person can be named by: the recorded one unless it is marked unverified.
 * approverOf records only verified ones; grants approved before it did still hold whatever
 * the provider gave, with `emailVerified: false` beside it, and live on through refreshes.
 */
export const trustedEmail = (approver: Labelled): string | undefined => (approver.emailVerified === false ? undefined : approver.email);

/**
 * The name to show for an approver, and introspection's `username`: the verified e-mail,
 * else the GitHub login (unique, unlike a display name), else the name, else the subject.
 */
export const approverLabel = (approver: Labelled): string => trustedEmail(approver) ?? approver.githubLogin ?? approver.name ?? approver.subject;

/**
 * Whether the allow-lists as configured now still admit the person who approved a grant.
 * Checked at every refresh, from what was recorded at sign-in: a verified e-mail, its
 * domain, a GitHub login. GitHub organisation membership cannot be looked up again without
 * the person's GitHub token (which Latchkey does not keep), so it counts as recorded at
 * sign-in: removing the organisation from OAUTH_ALLOWED_GITHUB_ORGS ends access, a person
 * leaving the organisation does not until they sign in again (docs/identity.md).
 */
export function approverStillAllowed(approver: Approver, policy: AccessPolicy): AccessDecision {
  const provider = approver.provider === 'github' ? 'github' : 'oidc';
  const person: Person = {
    provider,
    subject: approver.subject,
    ...(approver.email !== undefined ? { email: approver.email } : {}),
    emailVerified: approver.emailVerified === true,
    ...(approver.githubLogin !== undefined ? { githubLogin: approver.githubLogin } : {}),
    ...(approver.githubOrgs !== undefined ? { githubOrgs: approver.githubOrgs } : {}),
  };
  return checkAccess(person, policy);
}

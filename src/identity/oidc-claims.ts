import type { Person } from './person.js';

/** Claims as they come from a validated ID token or UserInfo response. */
export type Claims = Readonly<Record<string, unknown>>;

/** OpenID Connect Core §5.1 says boolean; some providers (older Amazon Cognito) send the string. */
const isTrue = (value: unknown): boolean => value === true || value === 'true';

const text = (value: unknown): string | undefined =>
  typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;

/**
 * Whether the provider vouched for the address in `claims.email`:
 * - `email_verified: true` (OpenID Connect Core §5.1; Google, Okta, Keycloak, Authentik, ...);
 * - or, only when `email_verified` is absent, Microsoft Entra ID's optional claim
 *   `xms_edov: true` ("email domain owner verified"): Entra never sends `email_verified`,
 *   and its `email` is otherwise an unverified, editable attribute.
 * An explicit `email_verified: false` is never overridden. `preferred_username` is never an
 * e-mail address to Latchkey, whatever it looks like.
 */
export function emailIsVerified(claims: Claims): boolean {
  if (claims.email_verified !== undefined) return isTrue(claims.email_verified);
  return isTrue(claims.xms_edov);
}

/**
 * The issuer part of a subject: host and path of the `iss` claim, without scheme or a trailing
 * slash (`accounts.google.com`, `login.microsoftonline.com/<tenant>/v2.0`). From the ID
 * token's own `iss`, so each Entra tenant behind a multi-tenant issuer gets its own namespace.
 */
export function issuerId(iss: string): string {
  const url = new URL(iss);
  return `${url.host}${url.pathname}`.replace(/\/+$/, '');
}

/**
 * The person an ID token names. E-mail, its verification and the name come from the ID token
 * when it carries `email`, otherwise from the UserInfo response (OpenID Connect Core §5.4:
 * providers such as Authelia return scope claims only there); never a mix of both.
 */
export function personFromOidcClaims(idToken: Claims & { iss: string; sub: string }, userinfo?: Claims): Person {
  const source = text(idToken.email) === undefined && userinfo !== undefined ? userinfo : idToken;
  const email = text(source.email);
  const name = text(idToken.name) ?? text(userinfo?.name);
  return {
    provider: 'oidc',
    subject: `oidc:${issuerId(idToken.iss)}:${idToken.sub}`,
    ...(email !== undefined ? { email } : {}),
    emailVerified: email !== undefined && emailIsVerified(source),
    ...(name !== undefined ? { name } : {}),
  };
}

import type { CookieOptions, Request } from 'express';

/** The known-device cookie, shared by the consent pages and the owner's page. */
export const DEVICE_COOKIE = 'latchkey_device';

/** The consent pages' CSRF cookie: every consent form, and the sign-in that decides one, is bound to it. */
export const CSRF_COOKIE = 'latchkey_csrf';

/** The sign-in at a provider under way (src/oauth/sign-in/sign-in-state.ts). */
export const SIGN_IN_COOKIE = 'latchkey_signin';

/** The owner's page's session (src/http/admin-routes.ts). */
export const ADMIN_COOKIE = 'latchkey_admin';

/** A person's own page's session (src/http/account-routes.ts). */
export const ACCOUNT_COOKIE = 'latchkey_account';

/** One cookie from the Cookie header; we set few enough cookies not to need a parser. */
export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Our cookies' names and attributes. Over https every name carries the `__Host-` prefix: the
 * browser then accepts the cookie only if it is Secure, for path / and without a Domain, so no
 * sibling subdomain (another tunnel hostname on the same zone) can plant or overwrite it.
 */
export function cookieJar(https: boolean) {
  return {
    name: (base: string): string => (https ? `__Host-${base}` : base),
    options: (sameSite: 'lax' | 'strict', maxAgeMs?: number): CookieOptions => ({
      httpOnly: true,
      secure: https,
      sameSite,
      path: '/',
      ...(maxAgeMs !== undefined ? { maxAge: maxAgeMs } : {}),
    }),
  };
}

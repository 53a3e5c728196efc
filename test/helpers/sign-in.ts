import type { Response } from 'supertest';
import { consentField, CSRF_COOKIE, http, type ConsentPage, type Harness } from './http-harness.js';

/** The signed consent form a page carries (after a sign-in: the one naming the person). */
export const consentFieldOf = consentField;

/**
 * The browser's part of signing in with a provider through the consent flow, on the
 * supertest harness (issuer https://auth.example.com, so every cookie is __Host-): press
 * "Continue with …", let the test provider sign the person in (its signIn, by fetch), and
 * bring the callback back to Latchkey with the cookies a browser would send.
 */

export const SIGN_IN_COOKIE = '__Host-latchkey_signin';

/** Every cookie a response sets, by name (an emptied one as ''). */
export function setCookies(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of ([] as string[]).concat((res.headers['set-cookie'] as string[] | string | undefined) ?? [])) {
    const pair = line.split(';', 1)[0] ?? '';
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export const cookieHeader = (cookies: Record<string, string | undefined>): string =>
  Object.entries(cookies)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join('; ');

export interface StartedSignIn {
  res: Response;
  /** Where the browser goes: the provider's authorization URL. */
  location: string;
  /** The signed sign-in state cookie. */
  signIn: string;
}

/** POST /login/start/<provider> from a consent page, with its CSRF cookie. */
export async function pressContinue(h: Harness, page: ConsentPage, provider = 'oidc'): Promise<StartedSignIn> {
  const res = await http(h).post(`/login/start/${provider}`).set('Cookie', `${CSRF_COOKIE}=${page.csrf}`).type('form').send({ consent: page.consent });
  if (res.status !== 303) throw new Error(`sign-in start failed: ${res.status} ${res.text.slice(0, 300)}`);
  const signIn = setCookies(res)[SIGN_IN_COOKIE];
  if (!signIn) throw new Error('no sign-in cookie');
  return { res, location: String(res.headers.location), signIn };
}

/** GET the callback URL the provider redirected to, as the browser that started the sign-in. */
export function returnFromProvider(h: Harness, back: URL, cookies: Record<string, string | undefined>): Promise<Response> {
  return http(h).get(`${back.pathname}${back.search}`).set('Cookie', cookieHeader(cookies));
}

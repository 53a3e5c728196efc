import type { ClientRecord } from '../../store/types.js';
import type { AuthorizationRequest } from '../authorization-request.js';

/**
 * What the authorization and consent rules decide, for the routes to render. Where an error
 * may go is decided by the rules (the idea comes from workers-oauth-provider): a page shown
 * here, or a redirect back to a redirect URI that has been validated.
 */

/** A page shown by Latchkey itself; it never redirects. */
export interface ErrorPage {
  kind: 'page';
  status: number;
  title: string;
  message: string;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
}

/** Back to the client's validated redirect URI, with the response parameters and `iss` (RFC 9207). */
export interface RedirectBack {
  kind: 'redirect';
  location: string;
}

/** The consent page, with its signed form; `message` after a wrong PIN. */
export interface ShowConsent {
  kind: 'consent';
  client: ClientRecord;
  request: AuthorizationRequest;
  /** The signed pending consent the form carries. */
  form: string;
  message?: string;
}

export const errorPage = (status: number, title: string, message: string, retryAfter?: number): ErrorPage => ({
  kind: 'page',
  status,
  title,
  message,
  ...(retryAfter !== undefined ? { retryAfter } : {}),
});

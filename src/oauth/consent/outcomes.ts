import type { Approver, ClientRecord } from '../../store/types.js';
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
  /** A plain link back to the client, for a person to follow if they trust it. */
  link?: { href: string; text: string };
}

/** Back to the client's validated redirect URI, with the response parameters and `iss` (RFC 9207). */
export interface RedirectBack {
  kind: 'redirect';
  location: string;
  /** The right PIN was entered: remember this browser as a known device. */
  rememberDevice?: boolean;
}

/** How the consent page lets a person approve, in OAUTH_LOGIN's order: the PIN, and a button per provider. */
export interface SignInChoice {
  pin: boolean;
  providers: readonly { id: string; label: string }[];
}

/** The consent page, with its signed form; `message` after a wrong PIN. */
export interface ShowConsent {
  kind: 'consent';
  client: ClientRecord;
  request: AuthorizationRequest;
  /** The signed pending consent the form carries. */
  form: string;
  /** What the page offers to approve with (ignored once `person` is set). */
  signIn: SignInChoice;
  /** Who signed in with a provider: the page names them, and Approve needs no PIN. */
  person?: Approver;
  message?: string;
}

export const errorPage = (status: number, title: string, message: string, retryAfter?: number): ErrorPage => ({
  kind: 'page',
  status,
  title,
  message,
  ...(retryAfter !== undefined ? { retryAfter } : {}),
});

/**
 * An error or denial for a redirect URI that is not trusted to receive one automatically: the
 * same response the client would have got, as a link on a page that says where it goes.
 */
export function returnLinkPage(status: number, title: string, message: string, location: string): ErrorPage {
  const url = new URL(location);
  const where = describeRedirect(url);
  return {
    kind: 'page',
    status,
    title,
    message: `${message} This app's return address (${where}) has not been approved on this server before, so you are not sent there automatically.`,
    link: { href: location, text: `Return to ${where}` },
  };
}

/**
 * Where a redirect URI leads, for people: the host of a web URI; for a native app's scheme the
 * scheme with its host and path (`cursor://anysphere.cursor-retrieval/oauth/callback`), since
 * the scheme alone or the host alone says too little.
 */
export function describeRedirect(url: URL): string {
  if (url.protocol === 'https:' || url.protocol === 'http:') return url.host;
  return `${url.protocol}${url.host ? `//${url.host}` : ''}${url.pathname}`.slice(0, 120);
}

import { isLoopbackHttp } from '../net/loopback.js';
import { hasUnsafeDisplayChars, UNSAFE_DISPLAY_REASON } from './display-text.js';

/**
 * Redirect URI rules. Registration accepts https URIs, http only to a loopback host, and
 * native apps' private-use schemes (RFC 8252 §7.1) except schemes a browser would execute
 * or that address local content. Authorization matches exactly, except the port of a
 * loopback redirect (RFC 8252 §7.3). OAuth 2.1 §2.3.1 / RFC 9700 §4.1.3: no pattern matching.
 */

/** Schemes never accepted as redirect targets: they run script, read local data, or are not redirects. */
const FORBIDDEN_SCHEMES = new Set([
  'javascript:',
  'vbscript:',
  'data:',
  'blob:',
  'file:',
  'filesystem:',
  'about:',
  'view-source:',
  'ws:',
  'wss:',
  'ftp:',
  'mailto:',
  'tel:',
  'sms:',
  'chrome:',
  'intent:',
  // Browser launchers: each opens its rest as a web address in a browser, so a "native app"
  // redirect to one is an open redirect to any web site.
  'microsoft-edge:',
  'microsoft-edge-holographic:',
  'googlechrome:',
  'googlechromes:',
  'x-safari-http:',
  'x-safari-https:',
  'firefox:',
  'opera:',
  'brave:',
  'feed:',
  'feeds:',
  'jar:',
  'firefox-focus:',
  'firefox-klar:',
  'ddgquicklink:',
  'duckduckgo:',
  'x-web-search:',
  'edge:',
]);

/** Launcher families: "<browser>-http(s):" (microsoft-edge-https, opera-https, touch-https...) and x-callback-url schemes. */
const LAUNCHER_FAMILY = /-https?:$|x-callback/i;

/** An http(s) or script URL anywhere in a native app's redirect URI, once percent-decoded (…?url=https%3A%2F%2Fevil). */
const EMBEDDED_URL = /(https?|javascript|vbscript|data|file):/i;

/** The part after the scheme is itself a URL (launcher style: "anything:https://evil.example"). */
const WRAPS_A_URL = /^\/*([a-z][a-z0-9+.-]*:\/\/|(javascript|vbscript|data|file|blob|about|https?):)/i;

export const MAX_REDIRECT_URI_LENGTH = 2000;

export type RedirectUriCheck = { ok: true; url: URL } | { ok: false; reason: string };

export function checkRedirectUri(raw: string): RedirectUriCheck {
  if (raw.length === 0) return { ok: false, reason: 'is empty' };
  if (raw.length > MAX_REDIRECT_URI_LENGTH) return { ok: false, reason: 'is too long' };
  // Whitespace and control characters are silently stripped or re-encoded by URL parsers,
  // which is how "java\tscript:" style tricks get through; refuse them outright.
  if (/[\u0000-\u0020\u007f-\u009f\\]/.test(raw)) {
    return { ok: false, reason: 'contains whitespace, control characters or backslashes' };
  }
  if (hasUnsafeDisplayChars(raw)) return { ok: false, reason: UNSAFE_DISPLAY_REASON };
  if (raw.includes('#')) return { ok: false, reason: 'must not contain a fragment (RFC 6749 §3.1.2)' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'is not an absolute URI' };
  }
  if (url.username || url.password) return { ok: false, reason: 'must not contain user credentials' };
  // The URL parser "repairs" web URLs written without "//" ("https:https://x" becomes a host
  // named https): what is registered must already be the plain form, never a repaired one.
  if ((url.protocol === 'https:' || url.protocol === 'http:') && !/^https?:\/\/[^/]/i.test(raw)) {
    return { ok: false, reason: `must start with ${url.protocol}// and a host` };
  }
  if (url.protocol === 'https:') {
    if (!url.hostname) return { ok: false, reason: 'has no host' };
    // WHATWG URL parsing keeps "*", ";", "," and quotes in hosts; such a host is never a real
    // one, and the consent page puts the host into its CSP form-action (where "*" or ";" would
    // widen or break the policy).
    if (!/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(url.hostname)) {
      return { ok: false, reason: 'has an invalid host name' };
    }
    return { ok: true, url };
  }
  if (url.protocol === 'http:') {
    if (isLoopbackHttp(url)) return { ok: true, url };
    return { ok: false, reason: 'must use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])' };
  }
  if (FORBIDDEN_SCHEMES.has(url.protocol)) {
    return { ok: false, reason: `uses the forbidden scheme "${url.protocol}"` };
  }
  // A private-use scheme of a native app, such as cursor:// or com.example.app:/cb (RFC 8252 §7.1).
  if (!/^[a-z][a-z0-9+.-]*:$/.test(url.protocol)) return { ok: false, reason: 'has an invalid scheme' };
  if (LAUNCHER_FAMILY.test(url.protocol)) return { ok: false, reason: `uses the browser-launcher scheme "${url.protocol}"` };
  const rest = raw.slice(url.protocol.length);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return { ok: false, reason: 'has a broken percent-encoding' };
  }
  if (WRAPS_A_URL.test(rest) || WRAPS_A_URL.test(decoded) || EMBEDDED_URL.test(decoded)) {
    return { ok: false, reason: 'carries another URL after its scheme, as browser launchers do' };
  }
  return { ok: true, url };
}

/**
 * The URI string without the port of its authority. Only applied to URIs that passed
 * {@link checkRedirectUri} as loopback http, so the authority is a bare host and port.
 */
const withoutPort = (raw: string): string => raw.replace(/^(http:\/\/(?:\[[^\]]*\]|[^/:?#[]*))(?::\d*)?(?=[/?#]|$)/, '$1');

/**
 * Is `requested` one of the client's registered redirect URIs? Exact string match, or for a
 * loopback http URI the same string on any port (native apps pick a free port). The rest is
 * compared as a string, not as a parsed URL: parsing would let "127.1", "LOCALHOST" or
 * "/a/../callback" stand in for the registered value (OAuth 2.1 §2.3.1: exact match).
 */
export function matchRedirectUri(requested: string, registered: readonly string[]): boolean {
  if (registered.includes(requested)) return true;
  const req = checkRedirectUri(requested);
  if (!req.ok || !isLoopbackHttp(req.url)) return false;
  const target = withoutPort(requested);
  return registered.some((candidate) => {
    const reg = checkRedirectUri(candidate);
    return reg.ok && isLoopbackHttp(reg.url) && withoutPort(candidate) === target;
  });
}

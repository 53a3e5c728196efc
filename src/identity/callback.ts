import { safeEqual } from '../crypto/secrets.js';
import type { LoginTransaction } from './login-provider.js';
import type { LoginProviderId } from './person.js';
import { loginError } from './relying-party-errors.js';

/**
 * The callback URL the relying party library validates: the registered `callbackUrl` with
 * the query the provider sent. The library derives the token request's redirect_uri from it
 * (RFC 6749 §4.1.3: identical to the authorization request's), so it never depends on the
 * Host header or a proxy's idea of Latchkey's address.
 */
export function callbackWithQuery(callbackUrl: string, currentUrl: URL): URL {
  const url = new URL(callbackUrl);
  url.search = currentUrl.search;
  url.hash = '';
  return url;
}

/**
 * RFC 6749 §10.12: the callback must carry this browser's state. Checked here (in constant
 * time) before the library checks it again, so that a forged, stale or replayed callback is
 * reported as what it is and never reaches the provider's token endpoint.
 */
export function checkReturnedState(currentUrl: URL, transaction: LoginTransaction, provider: LoginProviderId, label: string): void {
  if (transaction.provider !== provider) {
    throw loginError('state-mismatch', label, `transaction for ${transaction.provider} at the ${provider} callback`);
  }
  // RFC 7636 §4.1: a verifier is 43 to 128 characters; without one the code would be redeemed unbound.
  if (typeof transaction.codeVerifier !== 'string' || transaction.codeVerifier.length < 43) {
    throw loginError('state-mismatch', label, 'transaction without a PKCE code verifier');
  }
  const returned = currentUrl.searchParams.getAll('state');
  if (returned.length !== 1 || !safeEqual(returned[0] ?? '', transaction.state)) {
    throw loginError('state-mismatch', label, returned.length === 0 ? 'callback without state' : 'callback state differs');
  }
}

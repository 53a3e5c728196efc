import type { PinPurpose } from './pin-guard.js';

/**
 * What the protocol rules report as they work, for monitoring: the seam `/metrics` enters
 * through (src/metrics/ counts what it hears; with OAUTH_METRICS_TOKEN unset nobody listens).
 * Only kinds of events, never who: no client id, token or address, so a metric's labels stay
 * few whatever the traffic.
 */
export interface OAuthObserver {
  /** A grant handed out tokens: `authorization_code` (a new grant) or `refresh_token` (a refresh). */
  tokensIssued(grantType: string): void;
  /** A whole grant was revoked, and why. */
  grantRevoked(reason: RevocationReason): void;
  /** A wrong PIN was counted against a budget. */
  pinFailed(purpose: PinPurpose): void;
  /** A wrong PIN used up a budget: that budget is paused for up to an hour. */
  pinLockedOut(purpose: PinPurpose): void;
}

/**
 * Why a grant went: a replayed code (RFC 9700 §4.5), a reused rotated refresh token
 * (RFC 9700 §4.14.2), the client's own revocation request (RFC 7009), the owner (the
 * owner's page or the `latchkey` command), or the person who approved it (their /account page).
 */
export type RevocationReason = 'code_replay' | 'refresh_reuse' | 'client_request' | 'owner' | 'person';

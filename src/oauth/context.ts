import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ScopePolicy, TokenPolicy } from '../config.js';
import type { RandomSource } from '../crypto/secrets.js';
import type { AccessPolicy } from '../identity/access-policy.js';
import type { Store } from '../store/types.js';
import type { OAuthObserver } from './observer.js';

/**
 * What the protocol rules need from the outside world, and only that: the issuer, the token
 * and scope policy, the protected resources, the store, the allow-lists, the audit log,
 * time, randomness, the log, and an observer for monitoring. Tests pass their own clock
 * and randomness.
 */
export interface OAuthContext {
  /** OAUTH_ISSUER_URL, verbatim. */
  issuer: string;
  tokens: TokenPolicy;
  scopes: ScopePolicy;
  /**
   * The protected resources tokens may be issued for (RFC 8707); the first is the default
   * audience. A function, because the list can change while the daemon runs.
   */
  resources: () => readonly string[];
  store: Store;
  /** Who may connect after signing in (OAUTH_ALLOWED_*, OAUTH_OWNER_EMAILS): checked again at every refresh. */
  accessPolicy: AccessPolicy;
  /** Security-relevant events, durable before the response (src/audit/). */
  audit: Pick<AuditLog, 'record'>;
  clock: Clock;
  random: RandomSource;
  logger: Logger;
  /** Hears what the rules do, for /metrics; absent when nobody listens. */
  observer?: OAuthObserver;
}

import type { Clock } from '../clock.js';
import { verifyPinHash, type PinHash } from '../crypto/pin-hash.js';
import { safeEqual } from '../crypto/secrets.js';

/** Says whether an attempt is the owner's PIN, in constant time. */
export type PinVerifier = (attempt: string) => Promise<boolean>;

/** A verifier for a plain PIN (OAUTH_PIN or a generated one). */
export function plainPinVerifier(pin: string): PinVerifier {
  return async (attempt) => safeEqual(attempt, pin);
}

/** A verifier for OAUTH_PIN_HASH, as the config parsed it. */
export function hashedPinVerifier(stored: PinHash): PinVerifier {
  return (attempt) => verifyPinHash(stored, attempt);
}

export type PinOutcome =
  | { kind: 'ok' }
  | { kind: 'wrong'; attemptsLeft: number }
  /** Too many failures for this consent: the app must start a new authorization. */
  | { kind: 'request-exhausted' }
  /** Too many failures overall in the last hour. */
  | { kind: 'locked'; retryAt: number };

const HOUR_MS = 3_600_000;

/**
 * Checks the owner's PIN in constant time and limits guessing twice over: a few attempts per
 * consent request, and a global budget of failures per hour across all requests and
 * addresses. With the default 30 failures an hour, trying every 6-digit PIN takes about
 * four years. The lockout also applies to the owner; the page says when to retry.
 *
 * Checks run one at a time: a hashed PIN takes a few milliseconds of scrypt, and limits read
 * before that wait must still hold when the failure is counted. It also bounds scrypt's
 * memory to one check, however many guesses arrive at once. The consent page and the
 * owner's page share one guard, so they share the hourly budget.
 */
export class PinGuard {
  private failures: number[] = [];
  private readonly perRequest = new Map<string, { failures: number; expiresAt: number }>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly verify: PinVerifier,
    private readonly clock: Clock,
    private readonly maxFailuresPerHour: number,
    private readonly maxAttemptsPerRequest: number,
  ) {}

  /** When the global lockout ends, or undefined if not locked. */
  lockedUntil(): number | undefined {
    const now = this.clock.now();
    this.failures = this.failures.filter((t) => t > now - HOUR_MS);
    if (this.failures.length < this.maxFailuresPerHour) return undefined;
    return (this.failures[0] ?? now) + HOUR_MS;
  }

  check(requestId: string, requestExpiresAt: number, attempt: string): Promise<PinOutcome> {
    const result = this.queue.then(() => this.checkNow(requestId, requestExpiresAt, attempt));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async checkNow(requestId: string, requestExpiresAt: number, attempt: string): Promise<PinOutcome> {
    const locked = this.lockedUntil();
    if (locked !== undefined) return { kind: 'locked', retryAt: locked };
    const now = this.clock.now();
    for (const [id, entry] of this.perRequest) if (entry.expiresAt <= now) this.perRequest.delete(id);
    const entry = this.perRequest.get(requestId) ?? { failures: 0, expiresAt: requestExpiresAt };
    if (entry.failures >= this.maxAttemptsPerRequest) return { kind: 'request-exhausted' };

    if (await this.verify(attempt)) return { kind: 'ok' };

    this.failures.push(now);
    entry.failures++;
    this.perRequest.set(requestId, entry);
    if (entry.failures >= this.maxAttemptsPerRequest) return { kind: 'request-exhausted' };
    const globalLock = this.lockedUntil();
    if (globalLock !== undefined) return { kind: 'locked', retryAt: globalLock };
    return { kind: 'wrong', attemptsLeft: this.maxAttemptsPerRequest - entry.failures };
  }
}

import { pinFailed, pinLockedOut } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { verifyPinHash, type PinHash } from '../crypto/pin-hash.js';
import { newSecret, safeEqual, type RandomSource } from '../crypto/secrets.js';
import type { KeyValueStore } from '../store/types.js';
import type { OAuthObserver } from './observer.js';

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
  /** Too many failures for this consent page or sign-in form: start a new one. */
  | { kind: 'request-exhausted' }
  /** Too many failures in the last hour in this attempt's budget. */
  | { kind: 'locked'; retryAt: number };

/** Where a PIN is typed: each place has its own budget for unknown devices. */
export type PinPurpose = 'consent' | 'admin';

export interface PinAttemptOptions {
  purpose?: PinPurpose;
  /**
   * A device that entered the right PIN before (a signed device cookie): it has a budget of
   * its own and is never paused by failures from anywhere else.
   */
  device?: string;
  /** Where the attempt came from (as TRUST_PROXY sees it), for the audit log. */
  ip?: string | undefined;
  /** The app whose consent page it was typed on (none on the owner's page), for the audit log. */
  clientId?: string | undefined;
}

/** One budget's failures: only when they happened matters, and only for an hour. */
export interface PinFailureLog {
  /** Counts one failure in a budget; `failure` names it, the same in every budget it counts in. */
  record(bucket: string, at: number, failure: string): Promise<void>;
  /** When the bucket's failures of the last hour (before `now`) happened, oldest first. */
  lastHour(bucket: string, now: number): Promise<number[]>;
  /** Forgets every failure of every bucket; returns how many failures went. */
  clear(): Promise<number>;
}

const HOUR_MS = 3_600_000;

/** The budget an attempt draws on: its device's, or the shared one of its purpose. */
export const pinBudget = (options: PinAttemptOptions): string =>
  options.device !== undefined ? `device:${options.device}` : `anyone:${options.purpose ?? 'consent'}`;

/** One address may spend at most this share of a shared budget, so it alone cannot pause every new browser. */
const ADDRESS_SHARE = 3;

/**
 * Checks the owner's PIN in constant time and limits guessing three ways:
 * - a few attempts per consent page or sign-in form;
 * - an hourly budget of failures shared by every browser Latchkey does not know, one for the
 *   consent pages and one for the owner's page, so guesses spread over many addresses gain
 *   nothing (with the default 30 an hour, all 6-digit PINs take about four years);
 * - an hourly budget per known device (a browser that entered the right PIN before).
 * Strangers can spend the shared budgets, which pauses new browsers, but never the owner's
 * known devices; `latchkey unlock` clears every budget.
 *
 * Checks run one at a time: a hashed PIN takes a few milliseconds of scrypt, and limits read
 * before that wait must still hold when the failure is counted. It also bounds scrypt's
 * memory to one check, however many guesses arrive at once.
 *
 * Every wrong PIN is in the audit log with where it came from, and so is the wrong PIN that
 * starts a lockout; attempts refused while locked are not (the PIN is not even checked), so a
 * flood against a paused budget cannot flood the log.
 */
export class PinGuard {
  private readonly perRequest = new Map<string, { failures: number; expiresAt: number }>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly verify: PinVerifier,
    private readonly clock: Clock,
    private readonly maxFailuresPerHour: number,
    private readonly maxAttemptsPerRequest: number,
    private readonly failures: PinFailureLog,
    private readonly random: RandomSource,
    private readonly audit?: Pick<AuditLog, 'record'>,
    /** Hears failures and lockouts, for /metrics. */
    private readonly observer?: Pick<OAuthObserver, 'pinFailed' | 'pinLockedOut'>,
  ) {}

  /** When the lockout of a budget ends, or undefined if it is not locked. */
  async lockedUntil(options: PinAttemptOptions = {}): Promise<number | undefined> {
    return this.bucketLockedUntil(pinBudget(options), this.maxFailuresPerHour);
  }

  private async bucketLockedUntil(bucket: string, limit: number): Promise<number | undefined> {
    const now = this.clock.now();
    const recent = await this.failures.lastHour(bucket, now);
    if (recent.length < limit) return undefined;
    return (recent[recent.length - limit] ?? now) + HOUR_MS;
  }

  /**
   * The budgets an attempt draws on: its known device's; or the shared budget of its place,
   * and within it its address's share, so that one address spends at most a third of it.
   */
  private budgets(options: PinAttemptOptions): { bucket: string; limit: number }[] {
    const main = { bucket: pinBudget(options), limit: this.maxFailuresPerHour };
    if (options.device !== undefined || options.ip === undefined) return [main];
    // A third of the budget, but never fewer than 3 wrong PINs (small budgets stay usable).
    const limit = Math.max(Math.min(this.maxFailuresPerHour, 3), Math.ceil(this.maxFailuresPerHour / ADDRESS_SHARE));
    return [{ bucket: `address:${options.purpose ?? 'consent'}:${options.ip}`, limit }, main];
  }

  private async lockedFor(options: PinAttemptOptions): Promise<number | undefined> {
    for (const { bucket, limit } of this.budgets(options)) {
      const until = await this.bucketLockedUntil(bucket, limit);
      if (until !== undefined) return until;
    }
    return undefined;
  }

  check(requestId: string, requestExpiresAt: number, attempt: string, options: PinAttemptOptions = {}): Promise<PinOutcome> {
    const result = this.queue.then(() => this.checkNow(requestId, requestExpiresAt, attempt, options));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Lifts every lockout and every page's attempt count (the owner's `latchkey unlock`). */
  async unlock(): Promise<number> {
    this.perRequest.clear();
    return this.failures.clear();
  }

  private async checkNow(requestId: string, requestExpiresAt: number, attempt: string, options: PinAttemptOptions): Promise<PinOutcome> {
    const locked = await this.lockedFor(options);
    if (locked !== undefined) return { kind: 'locked', retryAt: locked };
    const now = this.clock.now();
    for (const [id, entry] of this.perRequest) if (entry.expiresAt <= now) this.perRequest.delete(id);
    const entry = this.perRequest.get(requestId) ?? { failures: 0, expiresAt: requestExpiresAt };
    if (entry.failures >= this.maxAttemptsPerRequest) return { kind: 'request-exhausted' };

    if (await this.verify(attempt)) return { kind: 'ok' };

    const failure = newSecret(this.random, 6);
    for (const { bucket } of this.budgets(options)) await this.failures.record(bucket, now, failure);
    entry.failures++;
    this.perRequest.set(requestId, entry);
    const where = { purpose: options.purpose ?? 'consent', ip: options.ip, clientId: options.clientId, knownDevice: options.device !== undefined };
    this.observer?.pinFailed(where.purpose);
    const formClosed = entry.failures >= this.maxAttemptsPerRequest;
    await this.audit?.record(pinFailed({ ...where, formClosed }));
    const lockedNow = await this.lockedFor(options);
    if (lockedNow !== undefined) {
      // This failure spent the budget (it was not locked before it): a lockout starts.
      this.observer?.pinLockedOut(where.purpose);
      await this.audit?.record(pinLockedOut({ ...where, until: lockedNow }));
    }
    if (formClosed) return { kind: 'request-exhausted' };
    if (lockedNow !== undefined) return { kind: 'locked', retryAt: lockedNow };
    return { kind: 'wrong', attemptsLeft: this.maxAttemptsPerRequest - entry.failures };
  }
}

/** The namespace of PIN failures in the backend's key-value entries. */
const FAILURES = 'pin-failures';

/**
 * PIN failures kept in the backend's key-value entries, each living one hour: durable on the
 * files (a restart does not reset a lockout an attacker caused) and shared by every instance
 * on PostgreSQL (a lockout reached through one holds on all). The entries stay few: each
 * budget stops counting once it is spent.
 */
export function kvFailureLog(kv: Pick<KeyValueStore, 'put' | 'list' | 'delete'>): PinFailureLog {
  return {
    async record(bucket, at, failure) {
      await kv.put(FAILURES, `${bucket}|${at}|${failure}`, String(at), at + HOUR_MS);
    },
    async lastHour(bucket, now) {
      const prefix = `${bucket}|`;
      // An entry lives one hour from its failure, so the live ones are exactly the last hour's.
      return (await kv.list(FAILURES, now))
        .filter((e) => e.key.startsWith(prefix))
        .map((e) => Number(e.value))
        .sort((a, b) => a - b);
    },
    async clear() {
      const entries = await kv.list(FAILURES, Number.NEGATIVE_INFINITY);
      for (const e of entries) await kv.delete(FAILURES, e.key);
      return new Set(entries.map((e) => e.key.slice(e.key.lastIndexOf('|') + 1))).size;
    },
  };
}

/** When a paused budget opens again, for the page: seconds for Retry-After, and words for people. */
export function describeLockout(retryAt: number, now: number): { seconds: number; text: string } {
  const seconds = Math.max(1, Math.ceil((retryAt - now) / 1000));
  return { seconds, text: `after ${new Date(retryAt).toISOString().slice(11, 16)} UTC (in about ${Math.ceil(seconds / 60)} minutes)` };
}

import type { ClientRateLimitInfo, Options, Store as RateLimitStore } from 'express-rate-limit';
import { isUnavailable } from '../oauth/errors.js';

/** A counter's window: how many hits, and when it ends. */
interface CounterWindow {
  count: number;
  resetAt: number;
}

/** What the rate limits need of the backend's counters (its CounterStore, src/store/types.ts). */
export interface RateLimitCounters {
  get(key: string, now: number): Promise<CounterWindow | undefined>;
  increment(key: string, windowMs: number, now: number): Promise<CounterWindow>;
  decrement(key: string, now: number): Promise<void>;
  reset(prefix: string): Promise<number>;
}

/**
 * An express-rate-limit (v8) store over the backend's counters: on PostgreSQL
 * every instance counts in the same rows, so a limit of 60 a minute is 60 a minute across
 * the instances, not 60 on each. On the files it keeps counting in memory, as before.
 *
 * Each limiter needs its own `prefix` (express-rate-limit checks it). A client key is
 * encoded and ended with ';', so resetting one key never touches another that merely starts
 * with the same characters (1.2.3.4 and 1.2.3.45).
 */
export class CounterRateLimitStore implements RateLimitStore {
  /** Counts are shared with the other instances: express-rate-limit's double-count check needs to know. */
  readonly localKeys = false;
  readonly prefix: string;
  private windowMs = 60_000;
  private readonly now: () => number;

  constructor(
    private readonly counters: RateLimitCounters,
    options: { prefix: string; now?: () => number },
  ) {
    this.prefix = options.prefix;
    this.now = options.now ?? Date.now;
  }

  init(options: Options): void {
    this.windowMs = options.windowMs;
  }

  private key(key: string): string {
    return `${this.prefix}${encodeURIComponent(key)};`;
  }

  private static info(window: CounterWindow): ClientRateLimitInfo {
    return { totalHits: window.count, resetTime: new Date(window.resetAt) };
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const window = await this.counters.get(this.key(key), this.now());
    return window && CounterRateLimitStore.info(window);
  }

  /**
   * While the backend cannot count (the database down), the request goes through uncounted:
   * it then meets the same outage and answers 503 with Retry-After. Counted here, quietly,
   * rather than by express-rate-limit's passOnStoreError, which logs every such request.
   */
  async increment(key: string): Promise<ClientRateLimitInfo> {
    const now = this.now();
    try {
      return CounterRateLimitStore.info(await this.counters.increment(this.key(key), this.windowMs, now));
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      return { totalHits: 0, resetTime: new Date(now + this.windowMs) };
    }
  }

  async decrement(key: string): Promise<void> {
    await this.counters.decrement(this.key(key), this.now());
  }

  async resetKey(key: string): Promise<void> {
    await this.counters.reset(this.key(key));
  }

  async resetAll(): Promise<void> {
    await this.counters.reset(this.prefix);
  }
}

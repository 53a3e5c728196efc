/**
 * A bounded in-memory cache of introspection results, so a busy MCP server does not ask the
 * authorization server on every request. RFC 7662 §4 allows caching and warns that a
 * cached answer hides a revocation until it expires; that is why an entry lives at most
 * `maxAgeMs` (60 s by default) and never past the token's own `exp`.
 *
 * Keys are SHA-256 hashes of the tokens, so the cache holds no usable credential.
 */
export interface IntrospectionCacheOptions<T> {
  /** Longest time an answer is reused. 0 disables caching. */
  maxAgeMs: number;
  /** At most this many entries; the least recently used goes first. */
  maxEntries: number;
  now: () => number;
  /** When a value stops being true on its own (epoch ms), e.g. the token's exp; undefined if never. */
  expiresAt: (value: T) => number | undefined;
}

interface Entry<T> {
  value: T;
  until: number;
}

export class IntrospectionCache<T> {
  /** A Map iterates in insertion order; re-inserting on a hit makes it an LRU list. */
  private readonly entries = new Map<string, Entry<T>>();

  constructor(private readonly options: IntrospectionCacheOptions<T>) {}

  get(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.options.now()) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, value: T): void {
    if (this.options.maxAgeMs <= 0 || this.options.maxEntries <= 0) return;
    const now = this.options.now();
    const expiry = this.options.expiresAt(value);
    const until = Math.min(now + this.options.maxAgeMs, expiry ?? Number.POSITIVE_INFINITY);
    if (until <= now) return;
    this.entries.delete(key);
    this.entries.set(key, { value, until });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

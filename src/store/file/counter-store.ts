import type { CounterStore, CounterWindow } from '../types.js';

/** Counters kept at most; far above what rate limits and PIN budgets of one instance need. */
export const MAX_COUNTERS = 100_000;

/**
 * The counters of the file backend: in memory, because one instance is all the file backend
 * serves and a counter is worth nothing after its window. A restart clears them (a rate
 * limit or a PIN failure budget starts afresh: docs/storage.md). The size is bounded: when
 * full, the expired windows go, then the oldest ones, so addresses made up by an attacker
 * cannot exhaust memory.
 */
export class MemoryCounterStore implements CounterStore {
  private readonly windows = new Map<string, CounterWindow>();

  constructor(private readonly maxCounters = MAX_COUNTERS) {}

  async increment(key: string, windowMs: number, now: number): Promise<CounterWindow> {
    const current = this.windows.get(key);
    if (current && current.resetAt > now) {
      current.count++;
      return { ...current };
    }
    // A new window goes to the end of the map, which is thus ordered by when windows opened.
    this.windows.delete(key);
    this.makeRoom(now);
    const opened = { count: 1, resetAt: now + windowMs };
    this.windows.set(key, opened);
    return { ...opened };
  }

  async get(key: string, now: number): Promise<CounterWindow | undefined> {
    const current = this.windows.get(key);
    return current && current.resetAt > now ? { ...current } : undefined;
  }

  async decrement(key: string, now: number): Promise<void> {
    const current = this.windows.get(key);
    if (current && current.resetAt > now && current.count > 0) current.count--;
  }

  async reset(prefix: string): Promise<number> {
    let removed = 0;
    for (const key of this.windows.keys()) {
      if (key.startsWith(prefix)) {
        this.windows.delete(key);
        removed++;
      }
    }
    return removed;
  }

  private makeRoom(now: number): void {
    if (this.windows.size < this.maxCounters) return;
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
    // Still full of live windows: drop the oldest tenth, so the next inserts need no sweep.
    let excess = this.windows.size - Math.floor(this.maxCounters * 0.9);
    for (const key of this.windows.keys()) {
      if (excess-- <= 0) break;
      this.windows.delete(key);
    }
  }
}

import { MemoryCounterStore } from '../../../src/store/file/counter-store.js';

/** The file backend's in-memory counters stay bounded, whatever keys an attacker makes up. */
describe('MemoryCounterStore', () => {
  const NOW = Date.UTC(2026, 0, 1);

  it('never holds more than its bound: expired windows go first, then the oldest', async () => {
    const counters = new MemoryCounterStore(100);
    for (let i = 0; i < 50; i++) await counters.increment(`old-${i}`, 1_000, NOW);
    for (let i = 0; i < 50; i++) await counters.increment(`live-${i}`, 60_000, NOW + 500);
    // Full: the next new key first sweeps the 50 expired windows and keeps every live one.
    await counters.increment('newcomer', 60_000, NOW + 2_000);
    expect(await counters.reset('old-')).toBe(0);
    expect(await counters.reset('live-')).toBe(50);

    for (let i = 0; i < 99; i++) await counters.increment(`flood-${i}`, 60_000, NOW + 3_000);
    await counters.increment('one-more', 60_000, NOW + 3_000);
    // All live and full each time: a tenth at a time, the oldest windows went ('newcomer' among them), the newest stayed.
    expect(await counters.get('newcomer', NOW + 3_000)).toBeUndefined();
    expect(await counters.get('one-more', NOW + 3_000)).toEqual({ count: 1, resetAt: NOW + 63_000 });
    expect((await counters.reset('')) <= 100).toBe(true);
  });
});

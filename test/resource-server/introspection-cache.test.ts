import { FakeClock } from '../helpers/fake-clock.js';
import { IntrospectionCache } from '../../src/resource-server/introspection-cache.js';

interface Value {
  expMs?: number;
}

function cache(options: { maxAgeMs?: number; maxEntries?: number } = {}) {
  const clock = new FakeClock(1_000_000);
  const c = new IntrospectionCache<Value>({
    maxAgeMs: options.maxAgeMs ?? 60_000,
    maxEntries: options.maxEntries ?? 10,
    now: () => clock.now(),
    expiresAt: (v) => v.expMs,
  });
  return { c, clock };
}

describe('IntrospectionCache', () => {
  it('reuses an answer for at most maxAge', () => {
    const { c, clock } = cache();
    const value = {};
    c.set('k', value);
    clock.advance(59_999);
    expect(c.get('k')).toBe(value);
    clock.advance(1);
    expect(c.get('k')).toBeUndefined();
  });

  it('never keeps an answer past the token expiry, even inside maxAge', () => {
    const { c, clock } = cache();
    c.set('k', { expMs: clock.now() + 5_000 });
    clock.advance(4_999);
    expect(c.get('k')).toBeDefined();
    clock.advance(1);
    expect(c.get('k')).toBeUndefined();
  });

  it('does not store an answer that has already expired', () => {
    const { c, clock } = cache();
    c.set('k', { expMs: clock.now() });
    expect(c.size).toBe(0);
  });

  it('stores nothing when maxAge is 0', () => {
    const { c } = cache({ maxAgeMs: 0 });
    c.set('k', {});
    expect(c.get('k')).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it('is bounded and evicts the least recently used entry', () => {
    const { c } = cache({ maxEntries: 2 });
    c.set('a', {});
    c.set('b', {});
    expect(c.get('a')).toBeDefined(); // a is now the most recently used
    c.set('c', {});
    expect(c.size).toBe(2);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBeDefined();
    expect(c.get('c')).toBeDefined();
  });
});

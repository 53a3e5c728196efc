import { createHash } from 'node:crypto';
import { cryptoRandom, hashSecret, newSecret, safeEqual, secretMatcher, type RandomSource } from '../../src/crypto/secrets.js';

describe('secrets and token hashing', () => {
  it('newSecret gives 256 bits of base64url by default', () => {
    const secret = newSecret(cryptoRandom);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret, 'base64url')).toHaveLength(32);
  });

  it('newSecret asks the random source for the requested number of bytes', () => {
    const asked: number[] = [];
    const random: RandomSource = (n) => {
      asked.push(n);
      return Buffer.alloc(n, 0xab);
    };
    expect(newSecret(random, 16)).toBe(Buffer.alloc(16, 0xab).toString('base64url'));
    expect(asked).toEqual([16]);
  });

  it('cryptoRandom hands out the right number of bytes, never the same bytes twice, across block refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      const bytes = cryptoRandom(i % 7 === 0 ? 16 : 32);
      expect(bytes.length).toBe(i % 7 === 0 ? 16 : 32);
      const hex = bytes.toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    expect(cryptoRandom(4096)).toHaveLength(4096);
  });

  it('secretMatcher accepts exactly the secret it was made with, whatever the lengths', () => {
    const matches = secretMatcher('introspection-secret-0123456789');
    expect(matches('introspection-secret-0123456789')).toBe(true);
    expect(matches('introspection-secret-012345678')).toBe(false);
    expect(matches('introspection-secret-01234567890')).toBe(false);
    expect(matches('')).toBe(false);
    expect(matches('Introspection-secret-0123456789')).toBe(false);
  });

  it('newSecret does not repeat', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newSecret(cryptoRandom)));
    expect(seen.size).toBe(1000);
  });

  it('hashSecret is the base64url SHA-256 of the UTF-8 value', () => {
    // SHA-256("abc") from FIPS 180-2.
    const expected = Buffer.from('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad', 'hex').toString('base64url');
    expect(hashSecret('abc')).toBe(expected);
    expect(hashSecret('é')).toBe(createHash('sha256').update(Buffer.from('c3a9', 'hex')).digest('base64url'));
  });

  it('hashSecret is deterministic and never returns its input', () => {
    const secret = newSecret(cryptoRandom);
    expect(hashSecret(secret)).toBe(hashSecret(secret));
    expect(hashSecret(secret)).not.toBe(secret);
    expect(hashSecret(secret)).not.toBe(hashSecret(`${secret}x`));
  });

  it('safeEqual compares exactly, whatever the lengths', () => {
    expect(safeEqual('same', 'same')).toBe(true);
    expect(safeEqual('', '')).toBe(true);
    expect(safeEqual('same', 'Same')).toBe(false);
    expect(safeEqual('short', 'much longer value')).toBe(false);
    expect(safeEqual('abc', 'abc\u0000')).toBe(false);
  });
});

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Randomness is injected so tests can make it predictable; production uses node:crypto. */
export type RandomSource = (bytes: number) => Buffer;

/**
 * node:crypto's CSPRNG, drawn 8 KiB at a time: one randomBytes call per ~250 secrets instead
 * of one per secret (a code exchange needs three), as Node does for randomUUID. Every byte is
 * handed out once; a fresh block replaces a used one, never refills it in place.
 */
const RANDOM_BLOCK = 8192;
let block = Buffer.alloc(0);
let used = 0;
export const cryptoRandom: RandomSource = (bytes) => {
  if (bytes > RANDOM_BLOCK / 16) return randomBytes(bytes);
  if (used + bytes > block.length) {
    block = randomBytes(RANDOM_BLOCK);
    used = 0;
  }
  const out = block.subarray(used, used + bytes);
  used += bytes;
  return out;
};

/** An opaque credential: base64url of `bytes` random bytes (32 bytes = 256 bits by default). */
export function newSecret(random: RandomSource, bytes = 32): string {
  return random(bytes).toString('base64url');
}

/**
 * What we store instead of a credential. Credentials are 256-bit random values, so a plain
 * SHA-256 is enough: there is nothing to brute-force, and lookups stay O(1) by hash.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/**
 * A secret to check requests against, hashed once: the returned function then hashes only the
 * presented value and compares in constant time, exactly as {@link safeEqual} does.
 */
export function secretMatcher(secret: string): (presented: string) => boolean {
  const expected = createHash('sha256').update(secret, 'utf8').digest();
  return (presented) => timingSafeEqual(createHash('sha256').update(presented, 'utf8').digest(), expected);
}

/** Constant-time string comparison. Both sides are hashed first so lengths never leak. */
export function safeEqual(a: string, b: string): boolean {
  return secretMatcher(b)(a);
}

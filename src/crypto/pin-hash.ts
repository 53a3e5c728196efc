import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * OAUTH_PIN_HASH: the owner's PIN as an scrypt hash, so the plain PIN need not sit in the env
 * file. Format `scrypt:N:r:p:salt:hash` (salt and hash base64url). It has no `$`, `=` or
 * quotes on purpose: systemd's EnvironmentFile expands `$VAR`, and the value must survive
 * env files unquoted.
 *
 * A short PIN stays guessable offline from its hash (10^6 six-digit PINs at ~50 ms each is
 * hours of CPU): the hash keeps the PIN out of casual sight (backups, screen shares, config
 * management), while the online guessing limits in PinGuard are what protect the server.
 */

/**
 * What a PIN may be, for OAUTH_PIN and `latchkey hash-pin` alike. Six characters at least:
 * with the guessing limits, a 6-digit PIN takes years to find; a 4-digit one, days.
 */
export const PIN_PATTERN = /^\S{6,128}$/;
export const PIN_RULE = 'must be 6 to 128 characters without spaces';

export interface PinHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** 16 MiB of memory per check (128 * N * r): costly to brute-force, cheap to verify once. */
export const DEFAULT_SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
const FORMAT = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9_-]{16,}):([A-Za-z0-9_-]{43})$/;

/** Parses an OAUTH_PIN_HASH value, or returns undefined if it is not one we can verify. */
export function parsePinHash(value: string): PinHash | undefined {
  const m = FORMAT.exec(value);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds keep a tampered value from making every check take gigabytes or minutes.
  const powerOfTwo = N > 1 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16 || 128 * N * r > 512 * 1024 * 1024) return undefined;
  return { N, r, p, salt: Buffer.from(m[4] ?? '', 'base64url'), hash: Buffer.from(m[5] ?? '', 'base64url') };
}

function derive(pin: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(pin.normalize('NFC'), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPin(pin: string, params: { N: number; r: number; p: number } = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const hash = await derive(pin, salt, params);
  return `scrypt:${params.N}:${params.r}:${params.p}:${salt.toString('base64url')}:${hash.toString('base64url')}`;
}

/** Constant-time comparison of the derived key with the stored one. */
export async function verifyPinHash(stored: PinHash, attempt: string): Promise<boolean> {
  const key = await derive(attempt, stored.salt, stored);
  return key.length === stored.hash.length && timingSafeEqual(key, stored.hash);
}

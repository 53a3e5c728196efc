import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { loadConfig, ConfigError } from '../../src/config.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { createLogger } from '../../src/logger.js';
import { hashedPinVerifier, kvFailureLog, PinGuard } from '../../src/oauth/pin-guard.js';
import { openBackend } from '../../src/store/open-backend.js';
import { hashPin, parsePinHash, verifyPinHash } from '../../src/crypto/pin-hash.js';
import { captureIo } from '../helpers/cli-io.js';

describe('latchkey hash-pin', () => {
  it('prints only an scrypt hash on stdout, which verifies the PIN and nothing else', async () => {
    const io = captureIo({ secrets: ['482913'] });
    expect(await runCli(['hash-pin'], io)).toBe(0);
    const value = io.stdout.join('').trim();
    expect(value).toMatch(/^scrypt:16384:8:1:[\w-]+:[\w-]{43}$/);
    expect(value).not.toContain('482913');
    // Nothing that an env file or systemd would expand or split.
    expect(value).not.toMatch(/[$="' ]/);
    const parsed = parsePinHash(value);
    expect(parsed).toBeDefined();
    expect(await verifyPinHash(parsed!, '482913')).toBe(true);
    expect(await verifyPinHash(parsed!, '482914')).toBe(false);
    expect(io.stderr.join('')).toContain('OAUTH_PIN_HASH');
  });

  it('uses a fresh salt every time', async () => {
    expect(await hashPin('482913')).not.toBe(await hashPin('482913'));
  });

  it('asks twice on a terminal and refuses when the two differ', async () => {
    const io = captureIo({ secrets: ['482913', '482931'], interactive: true });
    expect(await runCli(['hash-pin'], io)).toBe(1);
    expect(io.stdout).toEqual([]);
    expect(io.stderr.join('')).toMatch(/differ/);
  });

  it('refuses a PIN the daemon would refuse, a short one included', async () => {
    const bad = captureIo({ secrets: ['12 34'] });
    expect(await runCli(['hash-pin'], bad)).toBe(1);
    const short = captureIo({ secrets: ['12345'] });
    expect(await runCli(['hash-pin'], short)).toBe(1);
    expect(short.stdout).toEqual([]);
    expect(short.stderr.join('')).toMatch(/6 to 128 characters/);
  });

  it('works through the installed bin with the PIN on standard input', () => {
    if (!existsSync('dist/cli.js')) throw new Error('run npm run build first (npm test does)');
    const run = spawnSync(process.execPath, ['dist/cli.js', 'hash-pin'], { input: '7391046\n', encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(/^scrypt:/);
  });
});

describe('OAUTH_PIN_HASH', () => {
  it('is accepted by the config in place of OAUTH_PIN', async () => {
    const value = await hashPin('482913');
    expect(loadConfig({ OAUTH_PIN_HASH: value }).pin.source).toEqual({ kind: 'hash', hash: parsePinHash(value) });
  });

  it('must be a hash made by hash-pin, and not set together with OAUTH_PIN', async () => {
    expect(() => loadConfig({ OAUTH_PIN_HASH: '482913' })).toThrow(ConfigError);
    expect(() => loadConfig({ OAUTH_PIN_HASH: 'scrypt:3:8:1:AAAAAAAAAAAAAAAAAAAAAA:' + 'A'.repeat(43) })).toThrow(/OAUTH_PIN_HASH/);
    const value = await hashPin('482913');
    expect(() => loadConfig({ OAUTH_PIN_HASH: value, OAUTH_PIN: '482913' })).toThrow(/not both/);
  });

  it('drives the PIN guard with the same limits as a plain PIN', async () => {
    const now = 1_000_000;
    const stored = parsePinHash(await hashPin('482913'));
    if (!stored) throw new Error('hash-pin made a hash the parser refuses');
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-pinhash-'));
    const { backend } = await openBackend({ dataDir: dir, logger: createLogger('silent'), random: cryptoRandom });
    const guard = new PinGuard(hashedPinVerifier(stored), { now: () => now }, 30, 3, kvFailureLog(backend.kv), cryptoRandom);
    expect(await guard.check('r1', now + 60_000, '000000')).toEqual({ kind: 'wrong', attemptsLeft: 2 });
    expect(await guard.check('r1', now + 60_000, '482913')).toEqual({ kind: 'ok' });
    // Guesses sent at once are checked one after another, so none slips past the limit.
    const burst = await Promise.all([1, 2, 3, 4].map((i) => guard.check('r2', now + 60_000, `00000${i}`)));
    expect(burst.map((o) => o.kind)).toEqual(['wrong', 'wrong', 'request-exhausted', 'request-exhausted']);
    await backend.close();
  });
});

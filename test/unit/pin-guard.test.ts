import { AuditLog } from '../../src/audit/audit-log.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { kvFailureLog, PinGuard, plainPinVerifier, type PinFailureLog } from '../../src/oauth/pin-guard.js';
import { openBackend, type OpenedBackend } from '../../src/store/open-backend.js';
import { FakeClock, removeDir, silentLogger, tempDir } from '../helpers/unit-context.js';

/** Failures live in a real file backend's key-value entries, as in the daemon. */
let backend: OpenedBackend;
let dir: string;
beforeEach(async () => {
  dir = await tempDir();
  ({ backend } = await openBackend({ dataDir: dir, logger: silentLogger(), random: cryptoRandom }));
});
afterEach(async () => {
  await backend.close();
  await removeDir(dir);
});
const failures = (): PinFailureLog => kvFailureLog(backend.kv);

const PIN = '48213907';
const HOUR = 3_600_000;

describe('PinGuard', () => {
  let clock: FakeClock;
  const expires = (): number => clock.now() + 30 * 60_000;

  beforeEach(() => {
    clock = new FakeClock();
  });

  it('accepts the correct PIN', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 5, failures(), cryptoRandom);
    expect(await guard.check('req-1', expires(), PIN)).toEqual({ kind: 'ok' });
  });

  it.each(['', '4821390', '482139070', '48213906', ' 48213907'])('refuses the wrong PIN %j', async (attempt) => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 5, failures(), cryptoRandom);
    expect(await guard.check('req-1', expires(), attempt)).toEqual({ kind: 'wrong', attemptsLeft: 4 });
  });

  it('counts down the attempts of one request, then exhausts it even for the right PIN', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 3, failures(), cryptoRandom);
    const exp = expires();
    expect(await guard.check('req-1', exp, '0')).toEqual({ kind: 'wrong', attemptsLeft: 2 });
    expect(await guard.check('req-1', exp, '1')).toEqual({ kind: 'wrong', attemptsLeft: 1 });
    expect(await guard.check('req-1', exp, '2')).toEqual({ kind: 'request-exhausted' });
    expect(await guard.check('req-1', exp, PIN)).toEqual({ kind: 'request-exhausted' });
  });

  it('keeps per-request budgets separate', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 2, failures(), cryptoRandom);
    const exp = expires();
    expect(await guard.check('req-1', exp, '0')).toEqual({ kind: 'wrong', attemptsLeft: 1 });
    expect(await guard.check('req-1', exp, '1')).toEqual({ kind: 'request-exhausted' });
    expect(await guard.check('req-2', exp, PIN)).toEqual({ kind: 'ok' });
  });

  it('a correct PIN does not reset the count of failures', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 3, failures(), cryptoRandom);
    const exp = expires();
    await guard.check('req-1', exp, 'x');
    expect(await guard.check('req-1', exp, PIN)).toEqual({ kind: 'ok' });
    expect(await guard.check('req-1', exp, 'y')).toEqual({ kind: 'wrong', attemptsLeft: 1 });
  });

  it('locks everyone out after N failures within an hour, across requests', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 4, 5, failures(), cryptoRandom);
    const start = clock.now();
    for (let i = 0; i < 3; i++) {
      expect((await guard.check(`req-${i}`, expires(), 'wrong')).kind).toBe('wrong');
      clock.advance(1000);
    }
    expect(await guard.lockedUntil()).toBeUndefined();
    expect(await guard.check('req-3', expires(), 'wrong')).toEqual({ kind: 'locked', retryAt: start + HOUR });
    expect(await guard.lockedUntil()).toBe(start + HOUR);
    // The owner too: the right PIN is refused while locked.
    expect(await guard.check('req-4', expires(), PIN)).toEqual({ kind: 'locked', retryAt: start + HOUR });
  });

  it('failures while locked do not extend the lockout', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 2, 5, failures(), cryptoRandom);
    const start = clock.now();
    await guard.check('a', expires(), 'x');
    await guard.check('b', expires(), 'x');
    clock.advance(10 * 60_000);
    for (let i = 0; i < 10; i++) expect((await guard.check(`c${i}`, expires(), 'x')).kind).toBe('locked');
    expect(await guard.lockedUntil()).toBe(start + HOUR);
  });

  it('lifts the lockout when the oldest failure is an hour old', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 3, 5, failures(), cryptoRandom);
    const start = clock.now();
    await guard.check('a', expires(), 'x');
    clock.advance(20 * 60_000);
    await guard.check('b', expires(), 'x');
    await guard.check('c', expires(), 'x');
    expect(await guard.lockedUntil()).toBe(start + HOUR);

    clock.ms = start + HOUR - 1;
    expect((await guard.check('d', expires(), PIN)).kind).toBe('locked');
    clock.ms = start + HOUR;
    // The first failure has aged out; two remain, under the limit of three.
    expect(await guard.lockedUntil()).toBeUndefined();
    expect(await guard.check('d', expires(), PIN)).toEqual({ kind: 'ok' });
    // One more failure brings it back to three within the hour.
    const again = await guard.check('e', expires(), 'x');
    expect(again).toEqual({ kind: 'locked', retryAt: start + 20 * 60_000 + HOUR });
  });

  it('forgets per-request counts once the request has expired', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 2, failures(), cryptoRandom);
    const exp = clock.now() + 1000;
    await guard.check('req-1', exp, 'x');
    expect(await guard.check('req-1', exp, 'y')).toEqual({ kind: 'request-exhausted' });
    clock.advance(2000);
    // The consent page is expired by now (ConsentSigner refuses it); the guard holds no state for it.
    expect(await guard.check('req-1', clock.now() + 1000, 'z')).toEqual({ kind: 'wrong', attemptsLeft: 1 });
  });
});

describe('PinGuard budgets: the owner can always get in', () => {
  let clock: FakeClock;
  const expires = (): number => clock.now() + 30 * 60_000;
  beforeEach(() => {
    clock = new FakeClock();
  });

  it('strangers spending the shared budget never pause a known device', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 3, 5, failures(), cryptoRandom);
    for (let i = 0; i < 3; i++) await guard.check(`attacker-${i}`, expires(), 'guess');
    expect((await guard.check('new-browser', expires(), PIN)).kind).toBe('locked');
    expect(await guard.check('owner-page', expires(), PIN, { device: 'owner-laptop' })).toEqual({ kind: 'ok' });
  });

  it('a known device has its own budget, which its own failures spend', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 2, 5, failures(), cryptoRandom);
    await guard.check('a', expires(), 'x', { device: 'd1' });
    const second = await guard.check('b', expires(), 'x', { device: 'd1' });
    expect(second.kind).toBe('locked');
    expect((await guard.check('c', expires(), PIN, { device: 'd1' })).kind).toBe('locked');
    // Neither another device nor the shared budget paid for d1's failures.
    expect(await guard.check('d', expires(), PIN, { device: 'd2' })).toEqual({ kind: 'ok' });
    expect(await guard.check('e', expires(), PIN)).toEqual({ kind: 'ok' });
  });

  it("the owner's page and the consent pages have separate shared budgets", async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 2, 5, failures(), cryptoRandom);
    await guard.check('a', expires(), 'x', { purpose: 'consent' });
    await guard.check('b', expires(), 'x', { purpose: 'consent' });
    expect((await guard.check('c', expires(), PIN, { purpose: 'consent' })).kind).toBe('locked');
    expect(await guard.check('admin-form', expires(), PIN, { purpose: 'admin' })).toEqual({ kind: 'ok' });
  });

  it('unlock lifts every lockout and every page count', async () => {
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 2, 2, failures(), cryptoRandom);
    await guard.check('a', expires(), 'x');
    await guard.check('a', expires(), 'x');
    expect(await guard.check('b', expires(), 'x', { device: 'd' })).toEqual({ kind: 'wrong', attemptsLeft: 1 });
    expect((await guard.check('c', expires(), PIN)).kind).toBe('locked');
    expect(await guard.unlock()).toBe(3);
    expect(await backend.kv.list('pin-failures', clock.now())).toEqual([]);
    expect(await guard.lockedUntil()).toBeUndefined();
    expect(await guard.check('a', expires(), PIN)).toEqual({ kind: 'ok' });
  });
});

describe('PIN failures in the backend', () => {
  it('survive a restart of the daemon (a lockout is not undone by restarting)', async () => {
    const clock = new FakeClock();
    const first = new PinGuard(plainPinVerifier(PIN), clock, 2, 5, failures(), cryptoRandom);
    await first.check('a', clock.now() + 60_000, 'x');
    await first.check('b', clock.now() + 60_000, 'x');
    await backend.close();
    ({ backend } = await openBackend({ dataDir: dir, logger: silentLogger(), random: cryptoRandom }));
    const second = new PinGuard(plainPinVerifier(PIN), clock, 2, 5, failures(), cryptoRandom);
    expect((await second.check('c', clock.now() + 60_000, PIN)).kind).toBe('locked');
  });
});

describe('PinGuard in the audit log', () => {
  it('records every wrong PIN with its source address, and the failure that starts a lockout once; attempts while locked are not recorded', async () => {
    const clock = new FakeClock();
    const audit = new AuditLog(backend.audit, clock);
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 3, 2, failures(), cryptoRandom, audit);
    const expires = clock.now() + 30 * 60_000;
    expect(await guard.check('req-1', expires, PIN, { ip: '203.0.113.1' })).toEqual({ kind: 'ok' });
    expect((await guard.check('req-1', expires, 'wrong-1', { ip: '203.0.113.1' })).kind).toBe('wrong');
    expect((await guard.check('req-1', expires, 'wrong-2', { ip: '203.0.113.1', purpose: 'consent' })).kind).toBe('request-exhausted');
    expect((await guard.check('req-2', expires, 'wrong-3', { ip: '198.51.100.2' })).kind).toBe('locked');
    for (let i = 0; i < 5; i++) expect((await guard.check(`req-${i + 3}`, expires, 'wrong-x', { ip: '198.51.100.3' })).kind).toBe('locked');

    const events = (await backend.audit.list({ limit: 100 })).reverse();
    expect(events.map((e) => [e.type, e.ip, e.detail?.formClosed])).toEqual([
      ['pin.failed', '203.0.113.1', false],
      ['pin.failed', '203.0.113.1', true],
      ['pin.failed', '198.51.100.2', false],
      ['pin.locked', '198.51.100.2', undefined],
    ]);
    // No client was named (as on the owner's page), so none is recorded.
    expect(events.map((e) => e.clientId)).toEqual([undefined, undefined, undefined, undefined]);
    expect(events[3]?.detail).toMatchObject({ purpose: 'consent', knownDevice: false, until: new Date(clock.now() + HOUR).toISOString() });
    // Never the PIN, right or wrong.
    expect(JSON.stringify(events)).not.toMatch(new RegExp(`${PIN}|wrong-`));
  });

  it('names the client whose consent page the PIN was typed on, in the failure and the lockout', async () => {
    const clock = new FakeClock();
    const audit = new AuditLog(backend.audit, clock);
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 1, 5, failures(), cryptoRandom, audit);
    const outcome = await guard.check('req-1', clock.now() + 60_000, 'wrong', { purpose: 'consent', ip: '203.0.113.1', clientId: 'client-of-the-page' });
    expect(outcome.kind).toBe('locked');
    const events = (await backend.audit.list({ limit: 100 })).reverse();
    expect(events.map((e) => [e.type, e.ip, e.clientId])).toEqual([
      ['pin.failed', '203.0.113.1', 'client-of-the-page'],
      ['pin.locked', '203.0.113.1', 'client-of-the-page'],
    ]);
  });
});

describe('PIN budgets per address', () => {
  it('a small budget keeps at least 3 wrong PINs per address', async () => {
    const clock = new FakeClock();
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 4, 100, failures(), cryptoRandom);
    const kinds: string[] = [];
    for (let i = 0; i < 4; i++) kinds.push((await guard.check(`r${i}`, clock.now() + 60_000, 'guess', { ip: '203.0.113.7' })).kind);
    expect(kinds).toEqual(['wrong', 'wrong', 'locked', 'locked']);
  });

  it('one address spends at most a third of the shared budget: it pauses itself, not every new browser', async () => {
    const clock = new FakeClock();
    const guard = new PinGuard(plainPinVerifier(PIN), clock, 30, 100, failures(), cryptoRandom);
    const outcomes: string[] = [];
    for (let i = 0; i < 15; i++) outcomes.push((await guard.check(`a${i}`, clock.now() + 60_000, 'guess', { ip: '203.0.113.7' })).kind);
    expect(outcomes.filter((k) => k === 'wrong')).toHaveLength(9);
    expect(outcomes.slice(9)).toEqual(Array(6).fill('locked'));
    // Another address (the owner on a new browser) still gets in.
    expect(await guard.check('owner', clock.now() + 60_000, PIN, { ip: '198.51.100.2' })).toEqual({ kind: 'ok' });
    // Three addresses together can still spend the shared budget: distributed guessing is capped too.
    for (const ip of ['192.0.2.1', '192.0.2.2']) for (let i = 0; i < 10; i++) await guard.check(`${ip}-${i}`, clock.now() + 60_000, 'guess', { ip });
    expect((await guard.check('late', clock.now() + 60_000, PIN, { ip: '198.51.100.3' })).kind).toBe('locked');
  });
});

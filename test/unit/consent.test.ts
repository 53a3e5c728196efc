import type { AuthorizationRequest } from '../../src/oauth/authorization-request.js';
import { TokenSigner } from '../../src/crypto/signed-token.js';
import { ConsentSigner } from '../../src/oauth/consent/consent-form.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';

const KEY = Buffer.alloc(32, 7);
const TTL = 30 * 60_000;
const NOW = Date.UTC(2026, 0, 1);
const REQUEST: AuthorizationRequest = {
  clientId: 'client-a',
  redirectUri: 'https://claude.ai/api/mcp/auth_callback',
  state: 'xyz',
  codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  scopes: ['read'],
  resource: 'https://mcp.example.com',
};

describe('ConsentSigner', () => {
  const signer = new ConsentSigner(KEY, cryptoRandom, TTL);

  it('round-trips a pending consent for the same browser', () => {
    const cookie = signer.newCsrfCookie();
    const token = signer.sign(REQUEST, cookie, NOW);
    const check = signer.verify(token, cookie, NOW + 1000);
    expect(check.ok).toBe(true);
    if (!check.ok) return;
    expect(check.pending.request).toEqual(REQUEST);
    expect(check.pending.expiresAt).toBe(NOW + TTL);
    expect(check.pending.id.length).toBeGreaterThan(10);
  });

  it('signs the same pending consent for a person who signed in: same id, browser and expiry, and only Latchkey can name the person', () => {
    const cookie = signer.newCsrfCookie();
    const first = signer.verify(signer.sign(REQUEST, cookie, NOW), cookie, NOW);
    if (!first.ok) throw new Error('expected a pending consent');
    const person = { subject: 'oidc:accounts.google.com:1098', email: 'alice@example.com', provider: 'oidc', emailVerified: true };
    const named = signer.verify(signer.signFor(first.pending, person), cookie, NOW + 1000);
    expect(named).toEqual({ ok: true, pending: { ...first.pending, approver: person } });
    // Another browser cannot use it, and it still expires with the original page.
    expect(signer.verify(signer.signFor(first.pending, person), signer.newCsrfCookie(), NOW)).toEqual({ ok: false, reason: 'csrf' });
    expect(signer.verify(signer.signFor(first.pending, person), cookie, NOW + TTL)).toEqual({ ok: false, reason: 'expired' });
    // A person written into a payload by anyone else does not verify.
    const forged = Buffer.from(JSON.stringify({ ...first.pending, approver: person })).toString('base64url');
    expect(signer.verify(`${forged}.${'A'.repeat(43)}`, cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('gives every signed consent its own id', () => {
    const cookie = signer.newCsrfCookie();
    const a = signer.verify(signer.sign(REQUEST, cookie, NOW), cookie, NOW);
    const b = signer.verify(signer.sign(REQUEST, cookie, NOW), cookie, NOW);
    expect(a.ok && b.ok && a.pending.id !== b.pending.id).toBe(true);
  });

  it('does not carry the CSRF cookie in clear', () => {
    const cookie = signer.newCsrfCookie();
    const token = signer.sign(REQUEST, cookie, NOW);
    const payload = Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8');
    expect(payload).not.toContain(cookie);
    expect(token).not.toContain(cookie);
  });

  it('verifies after a restart with the same key (a new signer instance)', () => {
    const cookie = signer.newCsrfCookie();
    const token = signer.sign(REQUEST, cookie, NOW);
    expect(new ConsentSigner(Buffer.from(KEY), cryptoRandom, TTL).verify(token, cookie, NOW).ok).toBe(true);
  });

  it('refuses a token signed with another key', () => {
    const cookie = signer.newCsrfCookie();
    const token = new ConsentSigner(Buffer.alloc(32, 8), cryptoRandom, TTL).sign(REQUEST, cookie, NOW);
    expect(signer.verify(token, cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a tampered payload', () => {
    const cookie = signer.newCsrfCookie();
    const [payload, mac] = signer.sign(REQUEST, cookie, NOW).split('.');
    const decoded = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as { request: AuthorizationRequest };
    decoded.request.redirectUri = 'https://evil.example.com/cb';
    const forged = `${Buffer.from(JSON.stringify(decoded)).toString('base64url')}.${mac ?? ''}`;
    expect(signer.verify(forged, cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a tampered MAC', () => {
    const cookie = signer.newCsrfCookie();
    const token = signer.sign(REQUEST, cookie, NOW);
    const flipped = token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A');
    expect(signer.verify(flipped, cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['no MAC', 'abc'],
    ['empty MAC', 'abc.'],
    ['extra part', 'a.b.c'],
  ])('refuses a malformed token (%s)', (_name, token) => {
    expect(signer.verify(token, 'cookie', NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses a correctly signed payload that is not a pending consent', () => {
    const cookie = signer.newCsrfCookie();
    const sealed = (value: unknown): string => {
      const payload = Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
      return new TokenSigner(KEY, 'consent-form').sign(payload);
    };
    // The hand-made seal is accepted for a well-formed payload, so the refusals below are the schema's.
    const valid = signer.verify(signer.sign(REQUEST, cookie, NOW), cookie, NOW);
    expect(valid.ok).toBe(true);
    if (!valid.ok) return;
    expect(signer.verify(sealed(valid.pending), cookie, NOW).ok).toBe(true);
    expect(signer.verify(sealed({ ...valid.pending, expiresAt: 'never' }), cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
    expect(signer.verify(sealed({ id: 'x' }), cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
    const notJson = Buffer.from('{not json', 'utf8').toString('base64url');
    const token = new TokenSigner(KEY, 'consent-form').sign(notJson);
    expect(signer.verify(token, cookie, NOW)).toEqual({ ok: false, reason: 'malformed' });
  });

  it('refuses another browser (wrong CSRF cookie) with csrf', () => {
    const token = signer.sign(REQUEST, signer.newCsrfCookie(), NOW);
    expect(signer.verify(token, signer.newCsrfCookie(), NOW)).toEqual({ ok: false, reason: 'csrf' });
  });

  it('refuses a missing CSRF cookie with csrf', () => {
    const token = signer.sign(REQUEST, signer.newCsrfCookie(), NOW);
    expect(signer.verify(token, undefined, NOW)).toEqual({ ok: false, reason: 'csrf' });
    expect(signer.verify(token, '', NOW)).toEqual({ ok: false, reason: 'csrf' });
  });

  it('expires after its time to live', () => {
    const cookie = signer.newCsrfCookie();
    const token = signer.sign(REQUEST, cookie, NOW);
    expect(signer.verify(token, cookie, NOW + TTL - 1).ok).toBe(true);
    expect(signer.verify(token, cookie, NOW + TTL)).toEqual({ ok: false, reason: 'expired' });
    expect(signer.verify(token, cookie, NOW + TTL + 60_000)).toEqual({ ok: false, reason: 'expired' });
  });
});

describe('TokenSigner', () => {
  const key = Buffer.alloc(32, 7);

  it('recognises its own tokens, for its own purpose only', () => {
    const device = new TokenSigner(key, 'device');
    const token = device.sign('abc');
    expect(device.verify(token)).toBe('abc');
    expect(new TokenSigner(key, 'admin-login').verify(token)).toBeUndefined();
    expect(new TokenSigner(Buffer.alloc(32, 8), 'device').verify(token)).toBeUndefined();
  });

  it.each(['', 'abc', 'abc.', '.mac', 'abd.x', undefined])('refuses %j', (token) => {
    const signer = new TokenSigner(key, 'device');
    const good = signer.sign('abc');
    expect(signer.verify(token)).toBeUndefined();
    expect(signer.verify(`${good}x`)).toBeUndefined();
  });
});

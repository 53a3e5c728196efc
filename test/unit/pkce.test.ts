import { isValidCodeVerifier, isValidS256Challenge, s256, verifyS256 } from '../../src/oauth/pkce.js';

// RFC 7636 Appendix B.
const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';

describe('PKCE S256 (RFC 7636)', () => {
  it('computes the Appendix B challenge', () => {
    expect(s256(VERIFIER)).toBe(CHALLENGE);
  });

  it('verifies the Appendix B pair', () => {
    expect(verifyS256(VERIFIER, CHALLENGE)).toBe(true);
  });

  it('refuses a different verifier', () => {
    const other = `${VERIFIER.slice(0, -1)}Y`;
    expect(isValidCodeVerifier(other)).toBe(true);
    expect(verifyS256(other, CHALLENGE)).toBe(false);
  });

  it('refuses the challenge itself presented as verifier (plain downgrade)', () => {
    expect(verifyS256(CHALLENGE, CHALLENGE)).toBe(false);
  });

  it('accepts verifiers of 43 and 128 characters and refuses 42 and 129', () => {
    expect(isValidCodeVerifier('a'.repeat(43))).toBe(true);
    expect(isValidCodeVerifier('a'.repeat(128))).toBe(true);
    expect(isValidCodeVerifier('a'.repeat(42))).toBe(false);
    expect(isValidCodeVerifier('a'.repeat(129))).toBe(false);
  });

  it('refuses a short or long verifier even when its hash matches', () => {
    const short = 'a'.repeat(42);
    const long = 'b'.repeat(129);
    expect(verifyS256(short, s256(short))).toBe(false);
    expect(verifyS256(long, s256(long))).toBe(false);
    expect(verifyS256('', s256(''))).toBe(false);
  });

  it.each([
    ['space', `${'a'.repeat(42)} `],
    ['plus', `${'a'.repeat(42)}+`],
    ['slash', `${'a'.repeat(42)}/`],
    ['equals padding', `${'a'.repeat(42)}=`],
    ['percent', `${'a'.repeat(42)}%`],
    ['non-ASCII', `${'a'.repeat(42)}é`],
    ['newline', `${'a'.repeat(43)}\n`],
  ])('refuses a verifier containing %s', (_name, verifier) => {
    expect(isValidCodeVerifier(verifier)).toBe(false);
    expect(verifyS256(verifier, s256(verifier))).toBe(false);
  });

  it('accepts every unreserved character in a verifier', () => {
    const verifier = `${'A'.repeat(20)}az09-._~${'z'.repeat(20)}`;
    expect(isValidCodeVerifier(verifier)).toBe(true);
    expect(verifyS256(verifier, s256(verifier))).toBe(true);
  });

  it('validates the S256 challenge format', () => {
    expect(isValidS256Challenge(CHALLENGE)).toBe(true);
    expect(isValidS256Challenge(`${CHALLENGE}=`)).toBe(false);
    expect(isValidS256Challenge(CHALLENGE.slice(1))).toBe(false);
    expect(isValidS256Challenge(`${CHALLENGE.slice(1)}+`)).toBe(false);
    expect(isValidS256Challenge('')).toBe(false);
  });

  it('refuses a challenge with different case', () => {
    expect(verifyS256(VERIFIER, CHALLENGE.toLowerCase())).toBe(false);
  });
});

import { randomBytes } from 'node:crypto';
import { SIGN_IN_TTL_MS, SignInStates, type SignInState } from '../../src/oauth/sign-in/sign-in-state.js';
import { TokenSigner } from '../../src/crypto/signed-token.js';

/** The sign-in cookie: only Latchkey's own, unexpired, unaltered state opens. */
describe('SignInStates', () => {
  const key = randomBytes(32);
  const states = new SignInStates(key);
  const now = Date.UTC(2026, 0, 1);
  const state: SignInState = {
    transaction: { provider: 'oidc', state: 's'.repeat(43), nonce: 'n'.repeat(43), codeVerifier: 'v'.repeat(43) },
    purpose: 'consent',
    consent: 'payload.mac',
    clientId: 'client-1',
    expiresAt: now + SIGN_IN_TTL_MS,
  };

  it('opens what it sealed, until it expires', () => {
    const cookie = states.seal(state);
    expect(states.open(cookie, now)).toEqual(state);
    expect(states.open(cookie, now + SIGN_IN_TTL_MS - 1)).toEqual(state);
    expect(states.open(cookie, now + SIGN_IN_TTL_MS)).toBeUndefined();
  });

  it('refuses an altered, foreign, missing or malformed cookie', () => {
    const cookie = states.seal(state);
    const [payload = '', mac = ''] = cookie.split('.');
    const flipped = `${payload.slice(0, 10)}${payload[10] === 'A' ? 'B' : 'A'}${payload.slice(11)}.${mac}`;
    expect(states.open(flipped, now)).toBeUndefined();
    expect(new SignInStates(randomBytes(32)).open(cookie, now)).toBeUndefined();
    // Another purpose's token under the same key (a consent form) is not a sign-in state.
    expect(states.open(new TokenSigner(key, 'consent-form').sign(payload), now)).toBeUndefined();
    expect(states.open(undefined, now)).toBeUndefined();
    expect(states.open('', now)).toBeUndefined();
    const signer = new TokenSigner(key, 'sign-in-transaction');
    expect(states.open(signer.sign(Buffer.from('not json').toString('base64url')), now)).toBeUndefined();
    expect(states.open(signer.sign(Buffer.from(JSON.stringify({ ...state, purpose: 'root' })).toString('base64url')), now)).toBeUndefined();
  });
});

import { describe, expect, it } from '@jest/globals';
import { emailIsVerified, issuerId, personFromOidcClaims } from '../../src/identity/oidc-claims.js';

const base = { iss: 'https://accounts.google.com', sub: '1098765' };

describe('emailIsVerified', () => {
  it('trusts email_verified true (and the string some providers send)', () => {
    expect(emailIsVerified({ email: 'a@example.com', email_verified: true })).toBe(true);
    expect(emailIsVerified({ email: 'a@example.com', email_verified: 'true' })).toBe(true);
  });

  it('does not trust an address without a verification claim (Entra ID sends none by default)', () => {
    expect(emailIsVerified({ email: 'a@example.com' })).toBe(false);
    expect(emailIsVerified({ email: 'a@example.com', email_verified: 'yes' })).toBe(false);
  });

  it("trusts Entra ID's xms_edov only when email_verified is absent", () => {
    expect(emailIsVerified({ email: 'a@contoso.com', xms_edov: true })).toBe(true);
    expect(emailIsVerified({ email: 'a@contoso.com', xms_edov: false })).toBe(false);
    expect(emailIsVerified({ email: 'a@contoso.com', email_verified: false, xms_edov: true })).toBe(false);
  });
});

describe('issuerId', () => {
  it('is host and path without scheme or trailing slash', () => {
    expect(issuerId('https://accounts.google.com')).toBe('accounts.google.com');
    expect(issuerId('https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0')).toBe(
      'login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0',
    );
    expect(issuerId('https://auth.example.com/application/o/latchkey/')).toBe('auth.example.com/application/o/latchkey');
    expect(issuerId('http://127.0.0.1:9000')).toBe('127.0.0.1:9000');
  });
});

describe('personFromOidcClaims', () => {
  it('takes subject, e-mail, verification and name from the ID token', () => {
    expect(personFromOidcClaims({ ...base, email: 'alice@example.com', email_verified: true, name: ' Alice ' })).toEqual({
      provider: 'oidc',
      subject: 'oidc:accounts.google.com:1098765',
      email: 'alice@example.com',
      emailVerified: true,
      name: 'Alice',
    });
  });

  it('takes e-mail and its verification from UserInfo when the ID token has none, never a mix', () => {
    const person = personFromOidcClaims({ ...base, email_verified: true }, { sub: base.sub, email: 'alice@example.com', name: 'Alice' });
    expect(person).toMatchObject({ email: 'alice@example.com', emailVerified: false, name: 'Alice' });
    const verified = personFromOidcClaims(base, { sub: base.sub, email: 'alice@example.com', email_verified: true });
    expect(verified).toMatchObject({ email: 'alice@example.com', emailVerified: true });
  });

  it('never uses preferred_username as an e-mail address', () => {
    const person = personFromOidcClaims({ ...base, preferred_username: 'alice@contoso.com' });
    expect(person.email).toBeUndefined();
    expect(person.emailVerified).toBe(false);
  });

  it('ignores blank or non-string claims', () => {
    const person = personFromOidcClaims({ ...base, email: '  ', email_verified: true, name: 42 });
    expect(person).toEqual({ provider: 'oidc', subject: 'oidc:accounts.google.com:1098765', emailVerified: false });
  });
});

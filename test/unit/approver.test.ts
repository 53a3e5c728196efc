import { describe, expect, it } from '@jest/globals';
import type { Person } from '../../src/identity/person.js';
import { approverLabel, approverOf, approverStillAllowed, trustedEmail } from '../../src/oauth/approver.js';

/**
 * What a grant records about the person who approved it, and the name it is shown by
 * (introspection's `username`, the gateway's X-Latchkey-Email, the pages): an address the
 * provider did not vouch for is never part of either.
 */

const policy = { emails: [], domains: ['example.com'], githubUsers: [], githubOrgs: ['acme'], ownerEmails: [] };

describe('approverOf', () => {
  it('records a verified e-mail', () => {
    const person: Person = { provider: 'oidc', subject: 'oidc:idp.example:alice', email: 'alice@example.com', emailVerified: true, name: 'Alice' };
    expect(approverOf(person)).toEqual({ subject: 'oidc:idp.example:alice', email: 'alice@example.com', name: 'Alice', provider: 'oidc', emailVerified: true });
    expect(approverLabel(approverOf(person))).toBe('alice@example.com');
  });

  it('drops an unverified e-mail (OpenID): the label is the name, never the address', () => {
    const person: Person = { provider: 'oidc', subject: 'oidc:idp.example:carol', email: 'carol@example.com', emailVerified: false, name: 'Carol' };
    const approver = approverOf(person);
    expect(approver).toEqual({ subject: 'oidc:idp.example:carol', name: 'Carol', provider: 'oidc', emailVerified: false });
    expect(approverLabel(approver)).toBe('Carol');
  });

  it('drops an unverified GitHub primary address: the label is the GitHub login, not the display name', () => {
    const person: Person = {
      provider: 'github',
      subject: 'github:1001',
      email: 'dev@example.com',
      emailVerified: false,
      name: 'Dev Eloper',
      githubLogin: 'unverified-dev',
      githubOrgs: ['acme'],
    };
    const approver = approverOf(person);
    expect(approver.email).toBeUndefined();
    expect(approverLabel(approver)).toBe('unverified-dev');
    // Admitted by the organisation, as at sign-in; the dropped address never counted.
    expect(approverStillAllowed(approver, policy)).toEqual({ allowed: true });
    expect(approverStillAllowed({ ...approver, githubOrgs: [] }, policy)).toMatchObject({ allowed: false, reason: 'not-allowed' });
  });

  it('never names anyone by an address a grant recorded unverified (grants from before approverOf dropped them)', () => {
    const legacy = { subject: 'github:1002', provider: 'github', email: 'typed@example.com', emailVerified: false, name: 'Typed', githubLogin: 'typed-dev' };
    expect(trustedEmail(legacy)).toBeUndefined();
    expect(approverLabel(legacy)).toBe('typed-dev');
    expect(trustedEmail({ ...legacy, emailVerified: true })).toBe('typed@example.com');
  });

  it('labels a person with nothing but a subject by the subject', () => {
    expect(approverLabel(approverOf({ provider: 'oidc', subject: 'oidc:idp.example:x', emailVerified: false }))).toBe('oidc:idp.example:x');
  });
});

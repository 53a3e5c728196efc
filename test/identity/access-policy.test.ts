import { describe, expect, it } from '@jest/globals';
import { checkAccess, isOwner, type AccessPolicy } from '../../src/identity/access-policy.js';
import type { Person } from '../../src/identity/person.js';

const policy = (p: Partial<AccessPolicy>): AccessPolicy => ({ emails: [], domains: [], githubUsers: [], githubOrgs: [], ownerEmails: [], ...p });

const alice: Person = { provider: 'oidc', subject: 'oidc:accounts.google.com:111', email: 'Alice@Example.com', emailVerified: true, name: 'Alice' };
const unverifiedAlice: Person = { ...alice, emailVerified: false };
const octocat: Person = {
  provider: 'github',
  subject: 'github:583231',
  email: 'octocat@github.com',
  emailVerified: true,
  githubLogin: 'Octocat',
  githubOrgs: ['GitHub'],
};

describe('checkAccess', () => {
  it('lets in a verified address on the list, whatever its case', () => {
    expect(checkAccess(alice, policy({ emails: ['alice@example.com'] }))).toEqual({ allowed: true });
  });

  it('lets in a verified address of an allowed domain, but not of a subdomain or a look-alike', () => {
    expect(checkAccess(alice, policy({ domains: ['example.com'] }))).toEqual({ allowed: true });
    const sub = { ...alice, email: 'alice@eu.example.com' };
    expect(checkAccess(sub, policy({ domains: ['example.com'] })).allowed).toBe(false);
    const lookalike = { ...alice, email: 'alice@evilexample.com' };
    expect(checkAccess(lookalike, policy({ domains: ['example.com'] })).allowed).toBe(false);
    const trick = { ...alice, email: 'example.com@evil.org' };
    expect(checkAccess(trick, policy({ domains: ['example.com'] })).allowed).toBe(false);
  });

  it('lets owners in without listing them twice', () => {
    expect(checkAccess(alice, policy({ ownerEmails: ['alice@example.com'] }))).toEqual({ allowed: true });
  });

  it('refuses an unverified address that the lists name, and says why', () => {
    for (const p of [policy({ emails: ['alice@example.com'] }), policy({ domains: ['example.com'] }), policy({ ownerEmails: ['alice@example.com'] })]) {
      const decision = checkAccess(unverifiedAlice, p);
      expect(decision).toMatchObject({ allowed: false, reason: 'unverified-email' });
      if (!decision.allowed) expect(decision.message).toContain('has not verified the address Alice@Example.com');
    }
  });

  it('refuses a person on no list', () => {
    const decision = checkAccess(alice, policy({ emails: ['bob@example.com'], domains: ['example.org'] }));
    expect(decision).toMatchObject({ allowed: false, reason: 'not-allowed' });
    if (!decision.allowed) expect(decision.message).toContain('Alice@Example.com is not on the list');
  });

  it('refuses a person with no e-mail at all', () => {
    const { email: _unused, ...noEmail } = alice;
    expect(checkAccess({ ...noEmail, emailVerified: false }, policy({ domains: ['example.com'] }))).toMatchObject({ allowed: false, reason: 'not-allowed' });
  });

  it('lets in a GitHub login on the list, whatever its case', () => {
    expect(checkAccess(octocat, policy({ githubUsers: ['octocat'] }))).toEqual({ allowed: true });
  });

  it('lets in an active member of an allowed organisation', () => {
    expect(checkAccess(octocat, policy({ githubOrgs: ['github'] }))).toEqual({ allowed: true });
    expect(checkAccess({ ...octocat, githubOrgs: [] }, policy({ githubOrgs: ['github'] }))).toMatchObject({ allowed: false, reason: 'not-allowed' });
  });

  it('applies GitHub lists only to GitHub sign-ins', () => {
    const impostor: Person = { ...alice, githubLogin: 'octocat', githubOrgs: ['github'] };
    expect(checkAccess(impostor, policy({ githubUsers: ['octocat'], githubOrgs: ['github'] })).allowed).toBe(false);
  });

  it('lets a GitHub person in by a verified primary address too', () => {
    expect(checkAccess(octocat, policy({ domains: ['github.com'] }))).toEqual({ allowed: true });
    const unverified = { ...octocat, emailVerified: false };
    expect(checkAccess(unverified, policy({ domains: ['github.com'] }))).toMatchObject({ allowed: false, reason: 'unverified-email' });
    // An unverified address does not matter when the login is listed.
    expect(checkAccess(unverified, policy({ githubUsers: ['octocat'] }))).toEqual({ allowed: true });
  });

  it('names a GitHub person by login when there is no address', () => {
    const { email: _unused, ...noEmail } = octocat;
    const decision = checkAccess({ ...noEmail, emailVerified: false }, policy({ githubUsers: ['hubot'] }));
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.message).toContain('GitHub user Octocat is not on the list');
  });
});

describe('isOwner', () => {
  it('is true only for a verified owner address', () => {
    const owners = policy({ ownerEmails: ['alice@example.com'] });
    expect(isOwner(alice, owners)).toBe(true);
    expect(isOwner(unverifiedAlice, owners)).toBe(false);
    expect(isOwner(alice, policy({ emails: ['alice@example.com'], domains: ['example.com'] }))).toBe(false);
    expect(isOwner(octocat, owners)).toBe(false);
  });
});

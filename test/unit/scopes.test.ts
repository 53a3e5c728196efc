import { OAuthError } from '../../src/oauth/errors.js';
import { formatScope, narrowScopes, parseScope, resolveRequestedScopes } from '../../src/oauth/scopes.js';

const VALID = ['read', 'write', 'admin'];
const DEFAULTS = ['read'];

describe('parseScope / formatScope', () => {
  it('splits on spaces, drops empty entries and duplicates, keeps order', () => {
    expect(parseScope('write  read write ')).toEqual(['write', 'read']);
  });

  it('returns nothing for an absent or empty scope', () => {
    expect(parseScope(undefined)).toEqual([]);
    expect(parseScope('')).toEqual([]);
    expect(parseScope('   ')).toEqual([]);
  });

  it('is case-sensitive (RFC 6749 §3.3)', () => {
    expect(parseScope('Read read')).toEqual(['Read', 'read']);
  });

  it('formats with single spaces', () => {
    expect(formatScope(['read', 'write'])).toBe('read write');
    expect(formatScope([])).toBe('');
  });
});

describe('resolveRequestedScopes (at /authorize)', () => {
  it('keeps known scopes', () => {
    expect(resolveRequestedScopes('read write', VALID, DEFAULTS)).toEqual(['read', 'write']);
  });

  it('drops unknown scopes such as Claude\'s "claudeai"', () => {
    expect(resolveRequestedScopes('claudeai write', VALID, DEFAULTS)).toEqual(['write']);
  });

  it('falls back to the defaults when no scope is sent', () => {
    expect(resolveRequestedScopes(undefined, VALID, DEFAULTS)).toEqual(['read']);
    expect(resolveRequestedScopes('', VALID, DEFAULTS)).toEqual(['read']);
  });

  it('falls back to the defaults when only unknown scopes are sent', () => {
    expect(resolveRequestedScopes('claudeai offline_access', VALID, DEFAULTS)).toEqual(['read']);
  });

  it('does not treat scope names case-insensitively', () => {
    expect(resolveRequestedScopes('WRITE', VALID, DEFAULTS)).toEqual(['read']);
  });

  it('returns a copy of the defaults, not the configured array', () => {
    const defaults = ['read'];
    const result = resolveRequestedScopes(undefined, VALID, defaults);
    result.push('admin');
    expect(defaults).toEqual(['read']);
  });
});

describe('narrowScopes (at refresh, RFC 6749 §6)', () => {
  const granted = ['read', 'write'];

  it('keeps the grant scope when none is requested', () => {
    expect(narrowScopes(undefined, granted)).toEqual(['read', 'write']);
    expect(narrowScopes('', granted)).toEqual(['read', 'write']);
  });

  it('narrows to a subset', () => {
    expect(narrowScopes('read', granted)).toEqual(['read']);
  });

  it('refuses widening with invalid_scope', () => {
    let caught: unknown;
    try {
      narrowScopes('read admin', granted);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(OAuthError);
    expect((caught as OAuthError).error).toBe('invalid_scope');
    expect((caught as OAuthError).status).toBe(400);
    expect((caught as OAuthError).description).toContain('admin');
  });

  it.each(['read claudeai', 'claudeai', 'read READ'])('refuses a scope outside the grant, even one this server does not know: %s', (asked) => {
    expect(() => narrowScopes(asked, granted)).toThrow(expect.objectContaining({ error: 'invalid_scope', status: 400 }));
  });
});

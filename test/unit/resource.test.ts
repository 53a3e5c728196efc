import { OAuthError } from '../../src/oauth/errors.js';
import { checkBoundResource, resolveResource } from '../../src/oauth/resource.js';

const CONFIGURED = ['https://mcp.example.com', 'https://tools.example.com/mcp'];

function errorOf(fn: () => unknown): OAuthError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  throw new Error('expected an OAuthError');
}

describe('resolveResource (RFC 8707)', () => {
  it('uses the first configured resource when none is requested', () => {
    expect(resolveResource(undefined, CONFIGURED)).toBe('https://mcp.example.com');
    expect(resolveResource('', CONFIGURED)).toBe('https://mcp.example.com');
  });

  it('accepts each configured resource exactly', () => {
    expect(resolveResource('https://mcp.example.com', CONFIGURED)).toBe('https://mcp.example.com');
    expect(resolveResource('https://tools.example.com/mcp', CONFIGURED)).toBe('https://tools.example.com/mcp');
  });

  it('normalizes a trailing slash on a bare origin, returning the configured string', () => {
    expect(resolveResource('https://mcp.example.com/', CONFIGURED)).toBe('https://mcp.example.com');
    expect(resolveResource('https://mcp.example.com', ['https://mcp.example.com/'])).toBe('https://mcp.example.com/');
  });

  it('does not normalize a trailing slash on a path', () => {
    expect(errorOf(() => resolveResource('https://tools.example.com/mcp/', CONFIGURED)).error).toBe('invalid_target');
    expect(errorOf(() => resolveResource('https://tools.example.com/mcp', ['https://tools.example.com/mcp/'])).error).toBe(
      'invalid_target',
    );
  });

  it('compares the host case-insensitively but returns the configured string', () => {
    expect(resolveResource('https://MCP.Example.COM', CONFIGURED)).toBe('https://mcp.example.com');
    expect(resolveResource('HTTPS://tools.example.com/mcp', CONFIGURED)).toBe('https://tools.example.com/mcp');
  });

  it('compares the path case-sensitively', () => {
    expect(errorOf(() => resolveResource('https://tools.example.com/MCP', CONFIGURED)).error).toBe('invalid_target');
  });

  it.each([
    'https://evil.example.com',
    'https://mcp.example.com/other',
    'http://mcp.example.com',
    'https://mcp.example.com:8443',
    'https://mcp.example.com.evil.com',
    'https://tools.example.com',
    'https://tools.example.com/mcp?x=1',
    'https://tools.example.com/mcpx',
    'not a url',
    'urn:example:resource',
  ])('refuses the unknown resource %s with invalid_target (400)', (resource) => {
    const err = errorOf(() => resolveResource(resource, CONFIGURED));
    expect(err.error).toBe('invalid_target');
    expect(err.status).toBe(400);
  });

  it('refuses a fragment even on a known resource', () => {
    const err = errorOf(() => resolveResource('https://mcp.example.com#frag', CONFIGURED));
    expect(err.error).toBe('invalid_target');
    expect(err.description).toMatch(/fragment/);
  });

  it('throws a plain error when no resource is configured', () => {
    expect(() => resolveResource(undefined, [])).toThrow('no protected resource configured');
  });
});

describe('checkBoundResource (at /token)', () => {
  it('accepts an absent resource', () => {
    expect(() => checkBoundResource(undefined, 'https://mcp.example.com')).not.toThrow();
    expect(() => checkBoundResource('', 'https://mcp.example.com')).not.toThrow();
  });

  it('accepts the bound resource, with the bare-origin slash normalized', () => {
    expect(() => checkBoundResource('https://mcp.example.com', 'https://mcp.example.com')).not.toThrow();
    expect(() => checkBoundResource('https://mcp.example.com/', 'https://mcp.example.com')).not.toThrow();
  });

  it('refuses another resource with invalid_target', () => {
    expect(errorOf(() => checkBoundResource('https://tools.example.com/mcp', 'https://mcp.example.com')).error).toBe(
      'invalid_target',
    );
  });
});

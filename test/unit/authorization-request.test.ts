import {
  buildRedirect,
  validateAuthorizationRequest,
  type AuthorizationOutcome,
  type AuthorizationPolicy,
  type Params,
} from '../../src/oauth/authorization-request.js';
import { s256 } from '../../src/oauth/pkce.js';
import { clientRecord } from '../helpers/unit-context.js';

const POLICY: AuthorizationPolicy = {
  validScopes: ['read', 'write'],
  defaultScopes: ['read'],
  resources: ['https://mcp.example.com/mcp', 'https://other.example.com'],
};
const REDIRECT = 'https://claude.ai/api/mcp/auth_callback';
const CHALLENGE = s256('a'.repeat(43));
const client = clientRecord({ clientId: 'client-a' }, { redirect_uris: [REDIRECT] });

const params = (overrides: Params = {}): Params => ({
  response_type: 'code',
  client_id: client.clientId,
  redirect_uri: REDIRECT,
  code_challenge: CHALLENGE,
  code_challenge_method: 'S256',
  state: 'xyz',
  ...overrides,
});

function expectPage(outcome: AuthorizationOutcome): void {
  expect(outcome.kind).toBe('page');
  if (outcome.kind === 'page') expect(outcome.status).toBe(400);
}

function expectRedirect(outcome: AuthorizationOutcome, error: string, redirectUri = REDIRECT): void {
  expect(outcome.kind).toBe('redirect');
  if (outcome.kind !== 'redirect') return;
  expect(outcome.error.error).toBe(error);
  expect(outcome.redirectUri).toBe(redirectUri);
}

describe('validateAuthorizationRequest', () => {
  it('accepts a complete request and carries every bound value', () => {
    const outcome = validateAuthorizationRequest(
      params({ scope: 'read write', resource: 'https://mcp.example.com/mcp' }),
      client,
      POLICY,
    );
    expect(outcome).toEqual({
      kind: 'ok',
      request: {
        clientId: 'client-a',
        redirectUri: REDIRECT,
        state: 'xyz',
        codeChallenge: CHALLENGE,
        scopes: ['read', 'write'],
        resource: 'https://mcp.example.com/mcp',
      },
    });
  });

  describe('errors before client and redirect URI are known render a page, never a redirect', () => {
    it('unknown client', () => {
      const outcome = validateAuthorizationRequest(params(), undefined, POLICY);
      expectPage(outcome);
      if (outcome.kind === 'page') expect(outcome.title).toBe('Unknown client');
    });

    it('missing client_id', () => {
      const { client_id: _omitted, ...rest } = params();
      expectPage(validateAuthorizationRequest(rest, client, POLICY));
    });

    it('repeated client_id', () => {
      expectPage(validateAuthorizationRequest(params({ client_id: [client.clientId, client.clientId] }), client, POLICY));
    });

    it.each([
      'https://evil.example.com/cb',
      'https://claude.ai/api/mcp/auth_callback/../../evil',
      'https://claude.ai/api/mcp/auth_callback?x=1',
      'javascript:alert(1)',
      'https://claude.ai/api/mcp/auth_callback#frag',
    ])('unregistered redirect_uri %s', (uri) => {
      expectPage(validateAuthorizationRequest(params({ redirect_uri: uri }), client, POLICY));
    });

    it('repeated redirect_uri', () => {
      expectPage(validateAuthorizationRequest(params({ redirect_uri: [REDIRECT, 'https://evil.example.com/cb'] }), client, POLICY));
    });

    it('missing redirect_uri with several registered', () => {
      const two = clientRecord({}, { redirect_uris: [REDIRECT, 'https://claude.com/api/mcp/auth_callback'] });
      const { redirect_uri: _omitted, ...rest } = params({ client_id: two.clientId });
      expectPage(validateAuthorizationRequest(rest, two, POLICY));
    });

    it('an unknown client is a page even when every other parameter is also wrong', () => {
      expectPage(validateAuthorizationRequest({ client_id: 'nope', response_type: 'token', redirect_uri: 'https://evil.example.com' }, undefined, POLICY));
    });
  });

  it('uses the only registered redirect URI when none is sent (RFC 6749 §3.1.2.3)', () => {
    const { redirect_uri: _omitted, ...rest } = params();
    const outcome = validateAuthorizationRequest(rest, client, POLICY);
    expect(outcome.kind).toBe('ok');
    if (outcome.kind === 'ok') expect(outcome.request.redirectUri).toBe(REDIRECT);
  });

  it('accepts a loopback redirect on another port and keeps the requested URI', () => {
    const native = clientRecord({}, { redirect_uris: ['http://localhost/callback'] });
    const outcome = validateAuthorizationRequest(
      params({ client_id: native.clientId, redirect_uri: 'http://localhost:53123/callback' }),
      native,
      POLICY,
    );
    expect(outcome.kind).toBe('ok');
    if (outcome.kind === 'ok') expect(outcome.request.redirectUri).toBe('http://localhost:53123/callback');
  });

  describe('errors after validation redirect back with state', () => {
    it('unsupported_response_type', () => {
      const outcome = validateAuthorizationRequest(params({ response_type: 'token' }), client, POLICY);
      expectRedirect(outcome, 'unsupported_response_type');
      if (outcome.kind === 'redirect') expect(outcome.state).toBe('xyz');
    });

    it('missing response_type', () => {
      const { response_type: _omitted, ...rest } = params();
      expectRedirect(validateAuthorizationRequest(rest, client, POLICY), 'unsupported_response_type');
    });

    it('missing code_challenge', () => {
      const { code_challenge: _omitted, ...rest } = params();
      const outcome = validateAuthorizationRequest(rest, client, POLICY);
      expectRedirect(outcome, 'invalid_request');
      if (outcome.kind === 'redirect') {
        expect(outcome.state).toBe('xyz');
        expect(outcome.error.description).toMatch(/PKCE/);
      }
    });

    it('plain PKCE', () => {
      expectRedirect(validateAuthorizationRequest(params({ code_challenge_method: 'plain' }), client, POLICY), 'invalid_request');
    });

    it('missing code_challenge_method (which would mean plain)', () => {
      const { code_challenge_method: _omitted, ...rest } = params();
      expectRedirect(validateAuthorizationRequest(rest, client, POLICY), 'invalid_request');
    });

    it('lower-case s256', () => {
      expectRedirect(validateAuthorizationRequest(params({ code_challenge_method: 's256' }), client, POLICY), 'invalid_request');
    });

    it('a challenge that is not an S256 value', () => {
      expectRedirect(validateAuthorizationRequest(params({ code_challenge: 'short' }), client, POLICY), 'invalid_request');
    });

    it('unknown resource', () => {
      const outcome = validateAuthorizationRequest(params({ resource: 'https://evil.example.com' }), client, POLICY);
      expectRedirect(outcome, 'invalid_target');
      if (outcome.kind === 'redirect') expect(outcome.state).toBe('xyz');
    });

    it('client that did not register authorization_code', () => {
      const odd = clientRecord({}, { redirect_uris: [REDIRECT], grant_types: ['refresh_token'] });
      expectRedirect(validateAuthorizationRequest(params({ client_id: odd.clientId }), odd, POLICY), 'unauthorized_client');
    });

    it.each(['response_type', 'code_challenge', 'code_challenge_method', 'scope', 'resource'])('repeated %s', (name) => {
      const outcome = validateAuthorizationRequest(params({ [name]: ['a', 'b'] }), client, POLICY);
      expectRedirect(outcome, 'invalid_request');
      if (outcome.kind === 'redirect') expect(outcome.state).toBe('xyz');
    });

    it('repeated state: invalid_request without a state', () => {
      const outcome = validateAuthorizationRequest(params({ state: ['a', 'b'] }), client, POLICY);
      expectRedirect(outcome, 'invalid_request');
      if (outcome.kind === 'redirect') expect(outcome.state).toBeUndefined();
    });

    it('a too-long state is refused and not echoed', () => {
      const outcome = validateAuthorizationRequest(params({ state: 's'.repeat(2001) }), client, POLICY);
      expectRedirect(outcome, 'invalid_request');
      if (outcome.kind === 'redirect') expect(outcome.state).toBeUndefined();
    });

    it('omits state from the error when the request had none', () => {
      const { state: _omitted, ...rest } = params({ response_type: 'token' });
      const outcome = validateAuthorizationRequest(rest, client, POLICY);
      expectRedirect(outcome, 'unsupported_response_type');
      if (outcome.kind === 'redirect') expect(outcome).not.toHaveProperty('state');
    });
  });

  describe('scopes and resource', () => {
    const ok = (p: Params): { scopes: string[]; resource: string; state?: string } => {
      const outcome = validateAuthorizationRequest(p, client, POLICY);
      if (outcome.kind !== 'ok') throw new Error(`expected ok, got ${outcome.kind}`);
      return outcome.request;
    };

    it('gives the default scopes when no scope is sent', () => {
      expect(ok(params()).scopes).toEqual(['read']);
    });

    it('drops unknown scopes', () => {
      expect(ok(params({ scope: 'claudeai write' })).scopes).toEqual(['write']);
    });

    it('gives the default scopes when only unknown scopes are sent', () => {
      expect(ok(params({ scope: 'claudeai' })).scopes).toEqual(['read']);
    });

    it('uses the default resource when none is sent', () => {
      expect(ok(params()).resource).toBe('https://mcp.example.com/mcp');
    });

    it('binds the configured string of the named resource', () => {
      expect(ok(params({ resource: 'https://other.example.com/' })).resource).toBe('https://other.example.com');
    });

    it('carries state through and omits it when absent', () => {
      expect(ok(params({ state: 'opaque-123' })).state).toBe('opaque-123');
      const { state: _omitted, ...rest } = params();
      expect(ok(rest)).not.toHaveProperty('state');
    });
  });
});

describe('buildRedirect', () => {
  it('appends parameters and keeps the registered query', () => {
    const url = new URL(buildRedirect('https://example.com/cb?tenant=1', { code: 'abc', state: 's t&x', iss: 'https://auth.example.com' }));
    expect(url.origin + url.pathname).toBe('https://example.com/cb');
    expect(url.searchParams.get('tenant')).toBe('1');
    expect(url.searchParams.get('code')).toBe('abc');
    expect(url.searchParams.get('state')).toBe('s t&x');
    expect(url.searchParams.get('iss')).toBe('https://auth.example.com');
  });

  it('leaves out undefined parameters', () => {
    const url = new URL(buildRedirect('https://example.com/cb', { error: 'access_denied', state: undefined }));
    expect(url.searchParams.has('state')).toBe(false);
    expect(url.searchParams.get('error')).toBe('access_denied');
  });
});

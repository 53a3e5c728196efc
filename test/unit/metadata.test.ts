import { authorizationServerMetadata } from '../../src/oauth/metadata.js';
import { testConfig } from '../helpers/unit-context.js';

describe('authorizationServerMetadata (RFC 8414)', () => {
  const config = testConfig('/unused', { OAUTH_ISSUER_URL: 'https://auth.example.com' });
  const metadata = authorizationServerMetadata(config);

  it('uses the issuer string verbatim, with no trailing slash', () => {
    expect(metadata.issuer).toBe('https://auth.example.com');
    expect(metadata.token_endpoint).toBe('https://auth.example.com/token');
    expect(metadata.authorization_endpoint).toBe('https://auth.example.com/authorize');
    expect(metadata.registration_endpoint).toBe('https://auth.example.com/register');
    expect(metadata.revocation_endpoint).toBe('https://auth.example.com/revoke');
    expect(metadata.introspection_endpoint).toBe('https://auth.example.com/introspect');
  });

  it('keeps an issuer with a path as given', () => {
    const withPath = authorizationServerMetadata(testConfig('/unused', { OAUTH_ISSUER_URL: 'https://example.com/auth' }));
    expect(withPath.issuer).toBe('https://example.com/auth');
    expect(withPath.token_endpoint).toBe('https://example.com/auth/token');
  });

  it('advertises what MCP clients require', () => {
    expect(metadata).toMatchObject({
      response_types_supported: ['code'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
      scopes_supported: ['read', 'write', 'admin'],
      authorization_response_iss_parameter_supported: true,
    });
  });

  it('contains no null or undefined values', () => {
    for (const value of Object.values(metadata)) {
      expect(value).not.toBeNull();
      expect(value).not.toBeUndefined();
    }
  });
});

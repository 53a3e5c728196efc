import { OAuthError } from '../../src/oauth/errors.js';
import { registerClient, REGISTRATION_LIMITS } from '../../src/oauth/client-registration.js';
import { cryptoRandom, hashSecret } from '../../src/crypto/secrets.js';
import { BODIES } from '../fixtures/host-registrations.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0, 500);

const CLAUDE_BODY = BODIES.claude;
const CHATGPT_BODY = BODIES.chatgpt;

function errorOf(body: unknown): OAuthError {
  try {
    registerClient(body, NOW, cryptoRandom);
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  throw new Error('expected the registration to be refused');
}

function containsNull(value: unknown): boolean {
  if (value === null) return true;
  if (Array.isArray(value)) return value.some(containsNull);
  if (typeof value === 'object') return Object.values(value as Record<string, unknown>).some(containsNull);
  return false;
}

describe('registerClient (RFC 7591)', () => {
  it('registers Claude as a public client and echoes its metadata', () => {
    const { record, response } = registerClient(CLAUDE_BODY, NOW, cryptoRandom);
    expect(response).toEqual({
      client_id: record.clientId,
      client_id_issued_at: Math.floor(NOW / 1000),
      ...CLAUDE_BODY,
    });
    expect(response).not.toHaveProperty('client_secret');
    expect(response).not.toHaveProperty('client_secret_expires_at');
    expect(record.clientSecretHash).toBeUndefined();
    expect(record.issuedAt).toBe(NOW);
    expect(record.metadata.token_endpoint_auth_method).toBe('none');
    expect(record.metadata.scope).toBe('claudeai');
    expect(record.clientId.length).toBeGreaterThanOrEqual(20);
  });

  it('registers a ChatGPT-style client without scope and returns no scope', () => {
    const { record, response } = registerClient(CHATGPT_BODY, NOW, cryptoRandom);
    expect(response).not.toHaveProperty('scope');
    expect(record.metadata).not.toHaveProperty('scope');
    expect(response.redirect_uris).toEqual(CHATGPT_BODY.redirect_uris);
    expect(response.token_endpoint_auth_method).toBe('client_secret_post');
  });

  it('gives a confidential client a secret that never expires, stored only as its hash', () => {
    const { record, response } = registerClient(CHATGPT_BODY, NOW, cryptoRandom);
    const secret = response.client_secret;
    expect(typeof secret).toBe('string');
    expect((secret as string).length).toBeGreaterThanOrEqual(43); // 256 bits in base64url
    expect(response.client_secret_expires_at).toBe(0);
    expect(record.clientSecretHash).toBeDefined();
    expect(record.clientSecretHash).not.toBe(secret);
    expect(record.clientSecretHash).toBe(hashSecret(secret as string));
    expect(JSON.stringify(record)).not.toContain(secret as string);
  });

  it('defaults to client_secret_basic with both grants and the code response type', () => {
    const { record, response } = registerClient({ redirect_uris: ['https://example.com/cb'] }, NOW, cryptoRandom);
    expect(response.token_endpoint_auth_method).toBe('client_secret_basic');
    expect(response.grant_types).toEqual(['authorization_code', 'refresh_token']);
    expect(response.response_types).toEqual(['code']);
    expect(typeof response.client_secret).toBe('string');
    expect(record.clientSecretHash).toBeDefined();
  });

  it('gives every registration a distinct client_id and secret', () => {
    const a = registerClient(CHATGPT_BODY, NOW, cryptoRandom);
    const b = registerClient(CHATGPT_BODY, NOW, cryptoRandom);
    expect(a.record.clientId).not.toBe(b.record.clientId);
    expect(a.response.client_secret).not.toBe(b.response.client_secret);
  });

  it('treats null fields as absent and never answers with null', () => {
    const { response, record } = registerClient(
      {
        ...CLAUDE_BODY,
        scope: null,
        client_uri: null,
        logo_uri: null,
        contacts: null,
        tos_uri: null,
        policy_uri: null,
        software_id: null,
        software_version: null,
        application_type: null,
        grant_types: null,
        response_types: null,
      },
      NOW,
      cryptoRandom,
    );
    expect(containsNull(response)).toBe(false);
    expect(containsNull(record)).toBe(false);
    expect(response).not.toHaveProperty('scope');
    expect(response).not.toHaveProperty('logo_uri');
    expect(response.grant_types).toEqual(['authorization_code', 'refresh_token']);
  });

  it('never answers with undefined-valued keys', () => {
    const { response } = registerClient(CLAUDE_BODY, NOW, cryptoRandom);
    for (const [key, value] of Object.entries(response)) expect([key, value]).not.toEqual([key, undefined]);
  });

  it('drops unknown metadata fields', () => {
    const { response } = registerClient({ ...CLAUDE_BODY, jwks_uri: 'https://evil.example.com', extra: 1 }, NOW, cryptoRandom);
    expect(response).not.toHaveProperty('jwks_uri');
    expect(response).not.toHaveProperty('extra');
  });

  it('accepts and echoes optional metadata', () => {
    const body = {
      ...CLAUDE_BODY,
      client_uri: 'https://claude.ai',
      logo_uri: 'https://claude.ai/logo.png',
      tos_uri: 'https://claude.ai/tos',
      policy_uri: 'https://claude.ai/privacy',
      contacts: ['support@example.com'],
      software_id: 'claude',
      software_version: '1.2.3',
      application_type: 'web',
    };
    const { response } = registerClient(body, NOW, cryptoRandom);
    expect(response).toMatchObject(body);
  });

  it.each(['web', 'native'])('accepts application_type %s', (type) => {
    expect(registerClient({ ...CLAUDE_BODY, application_type: type }, NOW, cryptoRandom).response.application_type).toBe(type);
  });

  it('accepts loopback and private-use redirect URIs', () => {
    const uris = ['http://localhost/callback', 'http://127.0.0.1:6276/oauth/callback', 'cursor://anysphere.cursor-retrieval/oauth/callback'];
    expect(registerClient({ ...CLAUDE_BODY, redirect_uris: uris }, NOW, cryptoRandom).response.redirect_uris).toEqual(uris);
  });

  describe('refuses bad redirect URIs with invalid_redirect_uri', () => {
    it.each([
      ['javascript', ['javascript:alert(1)']],
      ['data', ['data:text/html,x']],
      ['plain http', ['http://example.com/cb']],
      ['fragment', ['https://example.com/cb#x']],
      ['one bad among good', ['https://example.com/cb', 'http://evil.com/cb']],
      ['tab in scheme', ['java\tscript:alert(1)']],
      ['relative', ['/callback']],
      ['non-string', [42]],
      ['empty list', []],
      ['too many', Array.from({ length: REGISTRATION_LIMITS.redirectUris + 1 }, (_, i) => `https://example.com/cb${i}`)],
    ])('%s', (_name, uris) => {
      const err = errorOf({ ...CLAUDE_BODY, redirect_uris: uris });
      expect(err.error).toBe('invalid_redirect_uri');
      expect(err.status).toBe(400);
    });

    it('missing redirect_uris', () => {
      const { redirect_uris: _omitted, ...body } = CLAUDE_BODY;
      expect(errorOf(body).error).toBe('invalid_redirect_uri');
    });

    it('redirect_uris as a string', () => {
      expect(errorOf({ ...CLAUDE_BODY, redirect_uris: 'https://example.com/cb' }).error).toBe('invalid_redirect_uri');
    });

    it('accepts exactly the maximum number of redirect URIs', () => {
      const uris = Array.from({ length: REGISTRATION_LIMITS.redirectUris }, (_, i) => `https://example.com/cb${i}`);
      expect(registerClient({ ...CLAUDE_BODY, redirect_uris: uris }, NOW, cryptoRandom).record.metadata.redirect_uris).toHaveLength(
        REGISTRATION_LIMITS.redirectUris,
      );
    });
  });

  describe('refuses inconsistent or unsupported metadata with invalid_client_metadata', () => {
    it.each([
      ['client_credentials grant', { grant_types: ['client_credentials'] }],
      ['implicit grant', { grant_types: ['authorization_code', 'implicit'] }],
      ['password grant', { grant_types: ['password'] }],
      ['refresh_token without authorization_code', { grant_types: ['refresh_token'] }],
      ['token response type', { response_types: ['token'] }],
      ['code id_token response type', { response_types: ['code id_token'] }],
      ['authorization_code without code response', { response_types: [] }],
      ['code response without authorization_code', { grant_types: [], response_types: ['code'] }],
      ['private_key_jwt', { token_endpoint_auth_method: 'private_key_jwt' }],
      ['client_secret_jwt', { token_endpoint_auth_method: 'client_secret_jwt' }],
      ['unknown application_type', { application_type: 'desktop' }],
      ['grant_types not an array', { grant_types: 'authorization_code' }],
      ['client_name not a string', { client_name: 42 }],
      ['javascript logo_uri', { logo_uri: 'javascript:alert(1)' }],
      ['relative client_uri', { client_uri: '/home' }],
      ['contacts not an array', { contacts: 'a@example.com' }],
      ['too many contacts', { contacts: Array.from({ length: REGISTRATION_LIMITS.contacts + 1 }, (_, i) => `c${i}@example.com`) }],
    ])('%s', (_name, overrides) => {
      const err = errorOf({ ...CLAUDE_BODY, ...overrides });
      expect(err.error).toBe('invalid_client_metadata');
      expect(err.status).toBe(400);
    });

    it.each(['client_name', 'scope', 'software_id', 'software_version'])('a too-long %s', (field) => {
      const err = errorOf({ ...CLAUDE_BODY, [field]: 'x'.repeat(REGISTRATION_LIMITS.stringLength + 1) });
      expect(err.error).toBe('invalid_client_metadata');
      expect(err.description).toContain(field);
      expect(() =>
        registerClient({ ...CLAUDE_BODY, [field]: 'x'.repeat(REGISTRATION_LIMITS.stringLength) }, NOW, cryptoRandom),
      ).not.toThrow();
    });

    it.each([
      ['a right-to-left override in client_name', { client_name: 'Claude\u202Eevil' }],
      ['a NUL in client_name', { client_name: 'Claude\u0000' }],
      ['a newline in client_name', { client_name: 'Claude\nApproved by the owner' }],
      ['a zero-width space in client_name', { client_name: 'Cla\u200Bude' }],
      ['a bidirectional isolate in software_id', { software_id: 'x\u2066y' }],
      ['a C1 control in a contact', { contacts: ['a\u0085b@example.com'] }],
      ['a right-to-left mark in client_uri', { client_uri: 'https://example.com/\u200F' }],
    ])('%s', (_name, overrides) => {
      const err = errorOf({ ...CLAUDE_BODY, ...overrides });
      expect(err.error).toBe('invalid_client_metadata');
      expect(err.description).toMatch(/control, bidirectional or invisible/);
    });

    it('accepts names in any script, with emoji', () => {
      expect(() => registerClient({ ...CLAUDE_BODY, client_name: 'Клод 克劳德 كلود ✨' }, NOW, cryptoRandom)).not.toThrow();
    });

    it('a too-long client_uri', () => {
      const err = errorOf({ ...CLAUDE_BODY, client_uri: `https://example.com/${'a'.repeat(REGISTRATION_LIMITS.uriLength)}` });
      expect(err.error).toBe('invalid_client_metadata');
    });

    it.each([
      ['null', null],
      ['an array', [CLAUDE_BODY]],
      ['a string', JSON.stringify(CLAUDE_BODY)],
      ['a number', 42],
      ['undefined', undefined],
      ['true', true],
    ])('a body that is %s', (_name, body) => {
      const err = errorOf(body);
      expect(err.error).toBe('invalid_client_metadata');
      expect(err.status).toBe(400);
    });
  });

  it('does not let a redirect URI error hide behind a metadata error order', () => {
    // Both wrong: the redirect URI error is the more specific one (RFC 7591 §3.2.2).
    const err = errorOf({ ...CLAUDE_BODY, grant_types: ['password'], redirect_uris: ['javascript:alert(1)'] });
    expect(err.error).toBe('invalid_redirect_uri');
  });
});

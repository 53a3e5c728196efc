import { ConfigError, isLoopbackIssuer, loadConfig } from '../../src/config.js';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has working defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      listen: { port: 3000, host: '127.0.0.1' },
      issuer: 'http://localhost:3000',
      https: false,
      pin: { source: { kind: 'generate' } },
      store: { dataDir: '.oauth_data', cleanupIntervalMs: 3_600_000 },
      tokens: { accessTtlMs: 3_600_000, refreshTtlMs: 2_592_000_000, codeTtlMs: 600_000, refreshReuseGraceMs: 30_000 },
      scopes: { valid: ['mcp'], defaults: ['mcp'] },
      resources: ['http://localhost:3000'],
      introspectionSecret: undefined,
      trustProxy: false,
      logLevel: 'info',
    });
    expect(config.pin.maxFailuresPerHour).toBeGreaterThan(0);
    expect(config.pin.maxFailuresPerHour).toBeLessThanOrEqual(60);
    expect(config.pin.maxAttemptsPerRequest).toBeGreaterThan(0);
    expect(config.limits.maxClients).toBeGreaterThan(0);
    expect(config.limits).toMatchObject({ tokenRequestsPerMinute: 300, introspectionFailuresPerMinute: 60, maxBodyBytes: 16384 });
  });

  it('reads the rate limits and the body limit', () => {
    expect(
      loadConfig({ OAUTH_TOKEN_RATE_LIMIT: '100000', OAUTH_INTROSPECTION_RATE_LIMIT: '7', OAUTH_MAX_BODY_BYTES: '65536' }),
    ).toMatchObject({ limits: { tokenRequestsPerMinute: 100000, introspectionFailuresPerMinute: 7, maxBodyBytes: 65536 } });
  });

  it('derives the default issuer from PORT', () => {
    expect(loadConfig({ PORT: '8080' }).issuer).toBe('http://localhost:8080');
  });

  it('treats empty and blank variables as unset', () => {
    const config = loadConfig({ PORT: '', OAUTH_PIN: '   ', OAUTH_ISSUER_URL: '' });
    expect(config.listen.port).toBe(3000);
    expect(config.pin.source).toEqual({ kind: 'generate' });
    expect(config.issuer).toBe('http://localhost:3000');
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '4000',
      HOST: '0.0.0.0',
      OAUTH_ISSUER_URL: 'https://auth.example.com',
      OAUTH_PIN: '123456',
      OAUTH_DATA_DIR: '/var/lib/latchkey',
      OAUTH_ACCESS_TOKEN_TTL: '60',
      OAUTH_REFRESH_TOKEN_TTL: '120',
      OAUTH_AUTH_CODE_TTL: '0.5',
      OAUTH_REFRESH_REUSE_GRACE: '0',
      OAUTH_CLEANUP_INTERVAL: '5',
      OAUTH_VALID_SCOPES: 'read, write admin',
      OAUTH_DEFAULT_SCOPES: 'read',
      OAUTH_RESOURCES: 'https://mcp.example.com/mcp, https://other.example.com',
      OAUTH_INTROSPECTION_SECRET: '0123456789abcdef',
      TRUST_PROXY: '1',
      LOG_LEVEL: 'debug',
    });
    expect(config).toMatchObject({
      listen: { port: 4000, host: '0.0.0.0' },
      issuer: 'https://auth.example.com',
      https: true,
      pin: { source: { kind: 'plain', pin: '123456' } },
      store: { dataDir: '/var/lib/latchkey', cleanupIntervalMs: 5000 },
      tokens: { accessTtlMs: 60_000, refreshTtlMs: 120_000, codeTtlMs: 500, refreshReuseGraceMs: 0 },
      scopes: { valid: ['read', 'write', 'admin'], defaults: ['read'] },
      resources: ['https://mcp.example.com/mcp', 'https://other.example.com'],
      introspectionSecret: '0123456789abcdef',
      trustProxy: 1,
      logLevel: 'debug',
    });
  });

  it('keeps the issuer string verbatim, including a path', () => {
    expect(loadConfig({ OAUTH_ISSUER_URL: 'https://example.com/auth' }).issuer).toBe('https://example.com/auth');
    expect(loadConfig({ OAUTH_ISSUER_URL: 'https://Auth.Example.com' }).issuer).toBe('https://Auth.Example.com');
  });

  it.each([
    ['http://localhost:3000', true],
    ['http://127.0.0.1', true],
    ['http://127.0.0.1:80', true],
    ['http://[::1]:8080', true],
    ['http://localhost:3000/auth', false],
    ['http://localhost.example.com', false],
    ['http://user@localhost:3000', false],
    ['https://localhost:3000', false],
    ['http://auth.example.com', false],
  ])('isLoopbackIssuer(%s) is %s', (issuer, loopback) => {
    expect(isLoopbackIssuer(issuer)).toBe(loopback);
  });

  it('uses the issuer as the resource when none is configured', () => {
    expect(loadConfig({ OAUTH_ISSUER_URL: 'https://auth.example.com' }).resources).toEqual(['https://auth.example.com']);
  });

  it.each([
    ['false', false],
    ['0', false],
    ['2', 2],
    ['loopback', 'loopback'],
    ['10.0.0.0/8, 127.0.0.1', '10.0.0.0/8, 127.0.0.1'],
    ['loopback, fd00::/8, ::1', 'loopback, fd00::/8, ::1'],
  ])('parses TRUST_PROXY=%s', (value, expected) => {
    expect(loadConfig({ TRUST_PROXY: value }).trustProxy).toEqual(expected);
  });

  describe('refuses a bad value with a ConfigError naming the variable', () => {
    it.each([
      ['PORT', 'abc'],
      ['PORT', '70000'],
      ['PORT', '-1'],
      ['PORT', '3000.5'],
      ['OAUTH_ISSUER_URL', 'https://auth.example.com/'],
      ['OAUTH_ISSUER_URL', 'https://example.com/auth/'],
      ['OAUTH_ISSUER_URL', 'not a url'],
      ['OAUTH_ISSUER_URL', 'ftp://auth.example.com'],
      ['OAUTH_ISSUER_URL', 'https://auth.example.com?x=1'],
      ['OAUTH_ISSUER_URL', 'https://auth.example.com#x'],
      ['OAUTH_PIN', '123'],
      ['OAUTH_ACCESS_TOKEN_TTL', '0'],
      ['OAUTH_ACCESS_TOKEN_TTL', '-5'],
      ['OAUTH_ACCESS_TOKEN_TTL', 'an hour'],
      ['OAUTH_REFRESH_TOKEN_TTL', 'forever'],
      ['OAUTH_AUTH_CODE_TTL', '0'],
      ['OAUTH_CLEANUP_INTERVAL', '-1'],
      ['OAUTH_REFRESH_REUSE_GRACE', '-1'],
      ['OAUTH_REFRESH_REUSE_GRACE', 'soon'],
      ['OAUTH_VALID_SCOPES', 'read "quoted"'],
      ['OAUTH_RESOURCES', 'https://mcp.example.com, nonsense'],
      ['OAUTH_RESOURCES', 'https://mcp.example.com#frag'],
      ['OAUTH_INTROSPECTION_SECRET', 'short'],
      ['OAUTH_INTROSPECTION_SECRET', '0123456789abcde'],
      ['OAUTH_METRICS_TOKEN', 'short'],
      ['OAUTH_METRICS_TOKEN', 'a long token with spaces'],
      ['LOG_LEVEL', 'verbose'],
      ['LOG_LEVEL', 'INFO'],
      ['TRUST_PROXY', 'every$thing'],
      ['TRUST_PROXY', 'true'],
      ['TRUST_PROXY', 'TRUE'],
      ['TRUST_PROXY', 'yes'],
      ['TRUST_PROXY', 'loopback, 10.0.0.0/33'],
      ['TRUST_PROXY', '300.1.1.1'],
      ['OAUTH_PIN', '12345'],
      ['OAUTH_TRUSTED_REDIRECT_HOSTS', 'https://chatgpt.com'],
      ['OAUTH_UNUSED_CLIENT_TTL', '0'],
      ['OAUTH_MAX_CLIENTS', '0'],
      ['OAUTH_PIN_MAX_FAILURES_PER_HOUR', '1.5'],
      ['OAUTH_TOKEN_RATE_LIMIT', '0'],
      ['OAUTH_INTROSPECTION_RATE_LIMIT', 'many'],
      ['OAUTH_MAX_BODY_BYTES', '100'],
      ['OAUTH_MAX_BODY_BYTES', '99999999'],
      ['OAUTH_DATABASE_URL', 'mysql://latchkey:hunter2@db.example.com/latchkey'],
      ['OAUTH_DATABASE_URL', 'db.example.com:5432'],
    ])('%s=%j', (variable, value) => {
      const err = configError({ [variable]: value });
      expect(err.variable).toBe(variable);
      expect(err.message.startsWith(`${variable}: `)).toBe(true);
      expect(err.message).not.toContain('\n');
      // A secret's value (the database URL carries a password) is never repeated.
      expect(err.message).not.toContain('hunter2');
    });

    it('OAUTH_DEFAULT_SCOPES not in OAUTH_VALID_SCOPES', () => {
      const err = configError({ OAUTH_VALID_SCOPES: 'read write', OAUTH_DEFAULT_SCOPES: 'read admin' });
      expect(err.variable).toBe('OAUTH_DEFAULT_SCOPES');
      expect(err.message).toContain('admin');
    });

    it('the default scopes default to the valid scopes', () => {
      expect(loadConfig({ OAUTH_VALID_SCOPES: 'read write' }).scopes.defaults).toEqual(['read', 'write']);
    });

    it('never repeats a secret value in the error line', () => {
      expect(configError({ OAUTH_INTROSPECTION_SECRET: 'short-secret' }).message).not.toContain('short-secret');
      expect(configError({ OAUTH_PIN: 'a b' }).message).not.toContain('a b');
      expect(configError({ OAUTH_METRICS_TOKEN: 'short-token' }).message).not.toContain('short-token');
      expect(configError({ OAUTH_METRICS_TOKEN: 'a long metrics token' }).message).not.toContain('metrics token');
    });

    it('TRUST_PROXY=true names the safe values', () => {
      expect(configError({ TRUST_PROXY: 'true' }).message).toMatch(/loopback.*hop count/);
    });

    it('says what is expected of the issuer', () => {
      expect(configError({ OAUTH_ISSUER_URL: 'https://auth.example.com/' }).message).toMatch(/trailing slash/);
    });
  });
});

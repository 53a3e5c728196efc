import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, listOf as list, SCOPE_TOKEN as scopeToken } from './config-error.js';
import { parsePinHash, PIN_PATTERN, PIN_RULE } from './crypto/pin-hash.js';
import { parseIdentityConfig, type IdentityConfig } from './identity/identity-config.js';
import { isLoopbackHttp } from './net/loopback.js';

/**
 * Everything Latchkey can be configured with: one schema over the environment, parsed once at
 * startup into one typed object ({@link Config}, inferred from the schema). Each part of the
 * daemon receives only its slice. Durations are given in seconds and converted here, once, to
 * the milliseconds every part works in (the names say so: `…Ms`). Every variable is
 * documented in .env.example and the README.
 */

export const DEFAULT_DATA_DIR = '.oauth_data';
export const CONTROL_SOCKET_FILE = 'control.sock';

export { ConfigError } from './config-error.js';

type Env = Record<string, string | undefined>;

/** Variables whose value must never be repeated in an error line (it ends up in journald). */
const SECRET_VARIABLES = new Set(['OAUTH_PIN', 'OAUTH_PIN_HASH', 'OAUTH_INTROSPECTION_SECRET', 'OAUTH_DATABASE_URL', 'OAUTH_METRICS_TOKEN']);

/** An issuer on this machine only (plain http to a loopback host, nothing after the port): fine for trying Latchkey out. */
export const isLoopbackIssuer = (issuer: string): boolean => /^http:\/\/[^/?#@]+$/.test(issuer) && URL.canParse(issuer) && isLoopbackHttp(new URL(issuer));


/** An absolute http(s) URL without query or fragment, kept as the exact string given. */
const httpUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not an absolute URL (expected e.g. https://auth.example.com)' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    ctx.addIssue({ code: 'custom', message: 'must use https:// (or http:// for local testing)' });
  } else if (url.hash || url.search || value.includes('#') || value.includes('?')) {
    ctx.addIssue({ code: 'custom', message: 'must not contain a query or fragment' });
  }
});

const wholeNumber = z.coerce.number({ error: 'expected a whole number' }).int('expected a whole number');
const positiveInt = wholeNumber.positive('expected a positive whole number');

/** Seconds in the variable, milliseconds in the config: the one place durations are converted. */
const durationMs = (defaultSeconds: number, { zeroAllowed = false } = {}) =>
  z.coerce
    .number({ error: 'expected a number of seconds' })
    .refine(
      (n) => Number.isFinite(n) && (zeroAllowed ? n >= 0 : n > 0),
      zeroAllowed ? 'expected zero or more seconds' : 'expected a positive number of seconds',
    )
    .transform((seconds) => seconds * 1000)
    .default(defaultSeconds * 1000);

const flag = (fallback: boolean) =>
  z
    .string()
    .transform((value, ctx) => {
      const v = value.toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      ctx.addIssue({ code: 'custom', message: 'is not true or false' });
      return z.NEVER;
    })
    .default(fallback);

const scopeList = z
  .string()
  .transform(list)
  .superRefine((scopes, ctx) => {
    const bad = scopes.find((s) => !scopeToken.test(s));
    if (bad !== undefined) ctx.addIssue({ code: 'custom', message: `"${bad}" is not a valid scope token` });
    else if (scopes.length === 0) ctx.addIssue({ code: 'custom', message: 'must list at least one scope' });
  });

/** Express `trust proxy`: false (the socket address is the client), a hop count, or addresses. */
const trustProxy = z
  .string()
  .transform((value, ctx): false | number | string => {
    if (value === 'false' || value === '0') return false;
    if (value === 'true') {
      // Trusting every hop takes the leftmost X-Forwarded-For address, which the client writes:
      // anyone could pick their address and dodge every per-address limit.
      ctx.addIssue({
        code: 'custom',
        message: 'true lets any client choose its own address; use loopback (cloudflared on this machine), a hop count such as 1, or the proxy\'s addresses',
      });
      return z.NEVER;
    }
    if (/^\d+$/.test(value)) return Number(value);
    // Express accepts comma-separated addresses, subnets and the names loopback, linklocal,
    // uniquelocal; anything else would only fail later, when the app starts.
    const bad = value.split(',').map((item) => item.trim()).find((item) => !isTrustedProxyItem(item));
    if (bad !== undefined) {
      ctx.addIssue({ code: 'custom', message: `"${bad}" is not a hop count, loopback, linklocal, uniquelocal, an address or a subnet (e.g. 10.0.0.0/8)` });
      return z.NEVER;
    }
    return value;
  })
  .default(false);

/** One entry of a TRUST_PROXY list: a name Express knows, an address, or a subnet. */
function isTrustedProxyItem(item: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(item)) return true;
  const [address = '', prefix, extra] = item.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const configSchema = z
  .object({
    PORT: wholeNumber.min(0, 'expected a port from 0 to 65535').max(65535, 'expected a port from 0 to 65535').default(3000),
    HOST: z.string().default('127.0.0.1'),
    OAUTH_ISSUER_URL: httpUrl
      .refine((v) => !v.endsWith('/'), 'ends with "/": remove the trailing slash, clients compare the issuer string exactly')
      .optional(),
    OAUTH_PIN: z.string().regex(PIN_PATTERN, PIN_RULE).optional(),
    OAUTH_PIN_HASH: z
      .string()
      .transform((value, ctx) => {
        const hash = parsePinHash(value);
        if (hash) return hash;
        ctx.addIssue({ code: 'custom', message: 'is not a hash made by `latchkey hash-pin` (expected scrypt:N:r:p:salt:hash)' });
        return z.NEVER;
      })
      .optional(),
    OAUTH_DATA_DIR: z.string().default(DEFAULT_DATA_DIR),
    OAUTH_DATABASE_URL: z
      .string()
      .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// (or postgresql://) URL, e.g. postgres://latchkey:…@db.example.com:5432/latchkey?sslmode=verify-full')
      .optional(),
    // Unix socket paths are limited to 107 bytes by the kernel.
    OAUTH_CONTROL_SOCKET: z.string().max(107, 'is longer than a Unix socket path may be (107 bytes)').optional(),
    OAUTH_ACCESS_TOKEN_TTL: durationMs(3600),
    OAUTH_REFRESH_TOKEN_TTL: durationMs(2_592_000),
    OAUTH_AUTH_CODE_TTL: durationMs(600),
    OAUTH_REFRESH_REUSE_GRACE: durationMs(30, { zeroAllowed: true }),
    OAUTH_CLEANUP_INTERVAL: durationMs(3600),
    OAUTH_AUDIT_RETENTION: durationMs(7_776_000),
    OAUTH_VALID_SCOPES: scopeList.default(['mcp']),
    OAUTH_DEFAULT_SCOPES: scopeList.optional(),
    OAUTH_RESOURCES: z
      .string()
      .transform(list)
      .pipe(z.array(httpUrl))
      .optional(),
    OAUTH_INTROSPECTION_SECRET: z.string().min(16, 'must be at least 16 characters (use: openssl rand -hex 32)').optional(),
    OAUTH_METRICS_TOKEN: z
      .string()
      .min(16, 'must be at least 16 characters (use: openssl rand -hex 32)')
      .regex(/^\S+$/, 'must not contain spaces (it is sent as a bearer token)')
      .optional(),
    TRUST_PROXY: trustProxy,
    LOG_LEVEL: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
    OAUTH_MAX_CLIENTS: positiveInt.default(10_000),
    OAUTH_REGISTRATION_RATE_LIMIT: positiveInt.default(30),
    OAUTH_TOKEN_RATE_LIMIT: positiveInt.default(300),
    OAUTH_AUTHORIZE_RATE_LIMIT: positiveInt.default(60),
    OAUTH_INTROSPECTION_RATE_LIMIT: positiveInt.default(60),
    // Below 1 KiB a Claude registration no longer fits; above 1 MiB a body is an attack.
    OAUTH_MAX_BODY_BYTES: positiveInt.min(1024, 'expected at least 1024 bytes').max(1_048_576, 'expected at most 1048576 bytes').default(16_384),
    OAUTH_JOURNAL_COMPACT_BYTES: positiveInt.default(4_194_304),
    OAUTH_PIN_MAX_FAILURES_PER_HOUR: positiveInt.default(30),
    OAUTH_PIN_MAX_ATTEMPTS_PER_REQUEST: positiveInt.default(5),
    OAUTH_ADMIN_IDLE_TIMEOUT: durationMs(900),
    OAUTH_UNUSED_CLIENT_TTL: durationMs(604_800),
    OAUTH_TRUSTED_REDIRECT_HOSTS: z
      .string()
      .transform((v) => list(v).map((h) => h.toLowerCase()))
      .superRefine((hosts, ctx) => {
        const bad = hosts.find((h) => !/^([a-z0-9-]+\.)*[a-z0-9-]+$/.test(h));
        if (bad !== undefined) ctx.addIssue({ code: 'custom', message: `"${bad}" is not a host name (list hosts such as chatgpt.com, without scheme or path)` });
      })
      .default(['chatgpt.com', 'claude.ai', 'claude.com']),
    OAUTH_GATEWAY_CONFIG: z.string().optional(),
    OAUTH_GATEWAY_IDLE_TIMEOUT: durationMs(900),
    OAUTH_GATEWAY_MAX_PROCESSES: positiveInt.default(8),
    OAUTH_GATEWAY_UPSTREAM_TIMEOUT: durationMs(60),
    OAUTH_CIMD_ENABLED: flag(true),
    OAUTH_CIMD_CA_FILE: z.string().optional(),
    OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES: flag(false),
  })
  .transform((env, ctx) => {
    const fail = (variable: string, message: string): void => ctx.addIssue({ code: 'custom', path: [variable], message });
    if (env.OAUTH_PIN !== undefined && env.OAUTH_PIN_HASH !== undefined) {
      // Two sources of truth would leave the owner unsure which PIN works.
      fail('OAUTH_PIN_HASH', 'set either OAUTH_PIN or OAUTH_PIN_HASH, not both (remove OAUTH_PIN)');
    }
    const validScopes = env.OAUTH_VALID_SCOPES;
    const defaultScopes = env.OAUTH_DEFAULT_SCOPES ?? validScopes;
    const unknown = defaultScopes.find((s) => !validScopes.includes(s));
    if (unknown !== undefined) fail('OAUTH_DEFAULT_SCOPES', `"${unknown}" is not listed in OAUTH_VALID_SCOPES`);

    const issuer = env.OAUTH_ISSUER_URL ?? `http://localhost:${env.PORT}`;
    const pin = env.OAUTH_PIN_HASH
      ? { kind: 'hash' as const, hash: env.OAUTH_PIN_HASH }
      : env.OAUTH_PIN !== undefined
        ? { kind: 'plain' as const, pin: env.OAUTH_PIN }
        : { kind: 'generate' as const };
    return {
      listen: { port: env.PORT, host: env.HOST },
      /** The public base URL, used verbatim (no trailing slash is ever added): RFC 8414 §2, RFC 9207. */
      issuer,
      /** The issuer is https: cookies are Secure, HSTS is sent. */
      https: issuer.startsWith('https:'),
      trustProxy: env.TRUST_PROXY,
      logLevel: env.LOG_LEVEL,
      pin: {
        /** The owner's PIN: plain (OAUTH_PIN), an scrypt hash (OAUTH_PIN_HASH), or one generated at each start. */
        source: pin,
        maxFailuresPerHour: env.OAUTH_PIN_MAX_FAILURES_PER_HOUR,
        maxAttemptsPerRequest: env.OAUTH_PIN_MAX_ATTEMPTS_PER_REQUEST,
      },
      tokens: {
        accessTtlMs: env.OAUTH_ACCESS_TOKEN_TTL,
        refreshTtlMs: env.OAUTH_REFRESH_TOKEN_TTL,
        codeTtlMs: env.OAUTH_AUTH_CODE_TTL,
        /** How long a just-rotated refresh token keeps working (0: strict one-shot rotation). */
        refreshReuseGraceMs: env.OAUTH_REFRESH_REUSE_GRACE,
      },
      scopes: { valid: validScopes, defaults: defaultScopes },
      redirects: {
        /**
         * Hosts whose https redirect URIs get protocol errors and denials automatically, like
         * loopback URIs and clients the owner approved before; any other gets a page with a link
         * (RFC 9700 §4.11.2: no open redirector for freshly registered clients).
         */
        trustedHosts: env.OAUTH_TRUSTED_REDIRECT_HOSTS,
      },
      /** Protected resources (MCP server URLs); the first is the default audience. */
      resources: env.OAUTH_RESOURCES && env.OAUTH_RESOURCES.length > 0 ? env.OAUTH_RESOURCES : [issuer],
      /** What resource servers send to /introspect; undefined turns introspection off. */
      introspectionSecret: env.OAUTH_INTROSPECTION_SECRET,
      limits: {
        maxClients: env.OAUTH_MAX_CLIENTS,
        /** Largest request body at /register, /token, /revoke and /introspect. */
        maxBodyBytes: env.OAUTH_MAX_BODY_BYTES,
        registrationsPerHour: env.OAUTH_REGISTRATION_RATE_LIMIT,
        /** Per client IP, at /token and /revoke. */
        tokenRequestsPerMinute: env.OAUTH_TOKEN_RATE_LIMIT,
        /** Per client IP, at /authorize and the consent form. */
        authorizeRequestsPerMinute: env.OAUTH_AUTHORIZE_RATE_LIMIT,
        /** Failed (wrong or missing secret) calls per client IP at /introspect. */
        introspectionFailuresPerMinute: env.OAUTH_INTROSPECTION_RATE_LIMIT,
      },
      store: {
        dataDir: env.OAUTH_DATA_DIR,
        /** OAUTH_DATABASE_URL: keep state in PostgreSQL instead of the files (docs/scaling.md). */
        databaseUrl: env.OAUTH_DATABASE_URL,
        /** The Unix socket the `latchkey` command talks to the running daemon through. */
        controlSocket: env.OAUTH_CONTROL_SOCKET ?? path.join(env.OAUTH_DATA_DIR, CONTROL_SOCKET_FILE),
        /** Journal size, in bytes, past which it is compacted into the snapshot files. */
        journalCompactBytes: env.OAUTH_JOURNAL_COMPACT_BYTES,
        cleanupIntervalMs: env.OAUTH_CLEANUP_INTERVAL,
        /** Clients never approved are deleted this long after registering; approved ones never expire. */
        unusedClientTtlMs: env.OAUTH_UNUSED_CLIENT_TTL,
      },
      admin: { idleTimeoutMs: env.OAUTH_ADMIN_IDLE_TIMEOUT },
      /** How long audit events are kept; older ones are deleted by the cleanup job. */
      audit: { retentionMs: env.OAUTH_AUDIT_RETENTION },
      /** OAUTH_METRICS_TOKEN: GET /metrics answers a bearer of it; unset, /metrics is off (404). */
      metrics: { token: env.OAUTH_METRICS_TOKEN },
      gateway: {
        /** OAUTH_GATEWAY_CONFIG: the MCP servers file (docs/gateway.md); unset means no gateway. */
        configFile: env.OAUTH_GATEWAY_CONFIG,
        /** Without a request for this long, a stdio session and its process end. */
        idleTimeoutMs: env.OAUTH_GATEWAY_IDLE_TIMEOUT,
        /** Live processes per stdio server. */
        maxProcessesPerServer: env.OAUTH_GATEWAY_MAX_PROCESSES,
        /** How long an HTTP upstream may take to start answering. */
        upstreamTimeoutMs: env.OAUTH_GATEWAY_UPSTREAM_TIMEOUT,
      },
      cimd: {
        /** Accept https URLs as client_id (Client ID Metadata Documents, MCP 2025-11-25). */
        enabled: env.OAUTH_CIMD_ENABLED,
        /** A PEM file of extra CA certificates trusted when fetching metadata documents. */
        caFile: env.OAUTH_CIMD_CA_FILE,
        /** Test-only: let metadata-document fetches reach loopback and private addresses. */
        allowPrivateAddresses: env.OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES,
      },
    };
  });

export type Config = z.output<typeof configSchema> & {
  /** Sign-in: the PIN and/or identity providers, and who may connect (src/identity/). */
  identity: IdentityConfig;
};
export type TokenPolicy = Config['tokens'];
export type ScopePolicy = Config['scopes'];
export type Limits = Config['limits'];
export type PinSource = Config['pin']['source'];

/** Parses the environment; throws one {@link ConfigError} naming the first bad variable. */
export function loadConfig(env: Env): Config {
  // Blank means unset, and values are trimmed, as a hand-edited env file needs.
  const cleaned: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined && value.trim() !== '') cleaned[name] = value.trim();
  }
  const result = configSchema.safeParse(cleaned);
  if (result.success) return { ...result.data, identity: parseIdentityConfig((name) => cleaned[name]) };
  const issue = result.error.issues[0];
  const variable = String(issue?.path[0] ?? 'configuration');
  const value = cleaned[variable];
  const shown = value === undefined || SECRET_VARIABLES.has(variable) ? '' : ` (got "${value}")`;
  throw new ConfigError(variable, `${issue?.message ?? 'invalid value'}${shown}`);
}

import { z } from 'zod';
import { parsePinHash } from './oauth/pin-hash.js';

/**
 * Everything Latchkey can be configured with, parsed and validated once at startup.
 * Every variable is documented in .env.example and the README.
 */
export interface Config {
  port: number;
  host: string;
  /** The public base URL, used verbatim (no trailing slash is ever added): RFC 8414 §2, RFC 9207. */
  issuer: string;
  /** The owner's PIN; undefined (with no pinHash) means "generate one at startup". */
  pin: string | undefined;
  /** OAUTH_PIN_HASH: the PIN as an scrypt hash (`latchkey hash-pin`), instead of `pin`. */
  pinHash: string | undefined;
  dataDir: string;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  authCodeTtl: number;
  refreshReuseGrace: number;
  cleanupInterval: number;
  validScopes: string[];
  defaultScopes: string[];
  /** Protected resources (MCP server URLs); the first is the default audience. */
  resources: string[];
  introspectionSecret: string | undefined;
  /** Express `trust proxy` value; false means the socket address is the client. */
  trustProxy: boolean | number | string;
  logLevel: string;
  maxClients: number;
  registrationRateLimit: number;
  /** Requests per client IP per minute at /token and /revoke. */
  tokenRateLimit: number;
  /** Requests per minute per client IP at /authorize and the consent form. */
  authorizeRateLimit: number;
  /** Failed (wrong or missing secret) requests per client IP per minute at /introspect. */
  introspectionRateLimit: number;
  /** Largest request body, in bytes, at /register, /token, /revoke and /introspect. */
  maxBodyBytes: number;
  /** Journal size, in bytes, past which the store compacts it into the snapshot files. */
  journalCompactBytes: number;
  pinMaxFailuresPerHour: number;
  pinMaxAttemptsPerRequest: number;
  /** Seconds without a request after which an owner's page session ends. */
  adminIdleTimeout: number;
  /** Accept https URLs as client_id (Client ID Metadata Documents, MCP 2025-11-25). */
  cimdEnabled: boolean;
  /** A PEM file of extra CA certificates trusted when fetching metadata documents. */
  cimdCaFile: string | undefined;
  /** Test-only: let metadata-document fetches reach loopback and private addresses. */
  cimdAllowPrivateAddresses: boolean;
  /** OAUTH_GATEWAY_CONFIG: the MCP servers file of the gateway (docs/gateway.md); unset means no gateway. */
  gatewayConfigFile: string | undefined;
  /** Seconds without a request after which a gateway stdio session and its process end. */
  gatewayIdleTimeout: number;
  /** Live processes per gateway stdio server. */
  gatewayMaxProcesses: number;
  /** Seconds a gateway HTTP upstream may take to start answering. */
  gatewayUpstreamTimeout: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const seconds = z.coerce
  .number({ error: 'expected a number of seconds' })
  .refine((n) => Number.isFinite(n) && n > 0, 'expected a positive number of seconds');

const positiveInt = z.coerce
  .number({ error: 'expected a whole number' })
  .int('expected a whole number')
  .positive('expected a positive whole number');

const scopeToken = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** An absolute http(s) URL without fragment or query, kept as the exact string given. */
function checkUrl(variable: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, `"${value}" is not an absolute URL (expected e.g. https://auth.example.com)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(variable, `"${value}" must use https:// (or http:// for local testing)`);
  }
  if (url.hash || url.search || value.includes('#') || value.includes('?')) {
    throw new ConfigError(variable, `"${value}" must not contain a query or fragment`);
  }
  return value;
}

function parseField<T>(variable: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ConfigError(variable, `${issue?.message ?? 'invalid value'} (got "${String(value)}")`);
  }
  return result.data;
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value.trim() === '' || value === 'false' || value === '0') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  // Express accepts comma-separated addresses/subnets and the names loopback, linklocal, uniquelocal.
  if (!/^[\w.:/, -]+$/.test(value)) {
    throw new ConfigError('TRUST_PROXY', `"${value}" is not a hop count, true/false, or a list of addresses/subnets`);
  }
  return value;
}

function parseBoolean(variable: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(value.toLowerCase())) return true;
  if (['false', '0', 'no', 'off'].includes(value.toLowerCase())) return false;
  throw new ConfigError(variable, `"${value}" is not true or false`);
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(env: Env): Config {
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const port = parseField('PORT', z.coerce.number().int().min(0).max(65535), get('PORT') ?? '3000');
  const host = get('HOST') ?? '127.0.0.1';

  const issuerRaw = get('OAUTH_ISSUER_URL') ?? `http://localhost:${port}`;
  const issuer = checkUrl('OAUTH_ISSUER_URL', issuerRaw);
  if (issuer.endsWith('/')) {
    throw new ConfigError(
      'OAUTH_ISSUER_URL',
      `"${issuer}" ends with "/": remove the trailing slash, clients compare the issuer string exactly`,
    );
  }

  const pin = get('OAUTH_PIN');
  if (pin !== undefined && !/^\S{4,128}$/.test(pin)) {
    throw new ConfigError('OAUTH_PIN', 'must be 4 to 128 characters without spaces (6 digits or more is recommended)');
  }
  const pinHash = get('OAUTH_PIN_HASH');
  if (pinHash !== undefined && parsePinHash(pinHash) === undefined) {
    throw new ConfigError('OAUTH_PIN_HASH', 'is not a hash made by `latchkey hash-pin` (expected scrypt:N:r:p:salt:hash)');
  }
  if (pinHash !== undefined && pin !== undefined) {
    // Two sources of truth would leave the owner unsure which PIN works.
    throw new ConfigError('OAUTH_PIN_HASH', 'set either OAUTH_PIN or OAUTH_PIN_HASH, not both (remove OAUTH_PIN)');
  }

  const validScopes = list(get('OAUTH_VALID_SCOPES') ?? 'mcp');
  for (const s of validScopes) {
    if (!scopeToken.test(s)) throw new ConfigError('OAUTH_VALID_SCOPES', `"${s}" is not a valid scope token`);
  }
  if (validScopes.length === 0) throw new ConfigError('OAUTH_VALID_SCOPES', 'must list at least one scope');
  const defaultScopes = list(get('OAUTH_DEFAULT_SCOPES') ?? validScopes.join(' '));
  for (const s of defaultScopes) {
    if (!validScopes.includes(s)) {
      throw new ConfigError('OAUTH_DEFAULT_SCOPES', `"${s}" is not listed in OAUTH_VALID_SCOPES`);
    }
  }
  if (defaultScopes.length === 0) throw new ConfigError('OAUTH_DEFAULT_SCOPES', 'must list at least one scope');

  const resources = list(get('OAUTH_RESOURCES')).map((r) => checkUrl('OAUTH_RESOURCES', r));
  if (resources.length === 0) resources.push(issuer);

  const introspectionSecret = get('OAUTH_INTROSPECTION_SECRET');
  if (introspectionSecret !== undefined && introspectionSecret.length < 16) {
    throw new ConfigError('OAUTH_INTROSPECTION_SECRET', 'must be at least 16 characters (use: openssl rand -hex 32)');
  }

  const logLevel = get('LOG_LEVEL') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  }

  return {
    port,
    host,
    issuer,
    pin,
    pinHash,
    dataDir: get('OAUTH_DATA_DIR') ?? '.oauth_data',
    accessTokenTtl: parseField('OAUTH_ACCESS_TOKEN_TTL', seconds, get('OAUTH_ACCESS_TOKEN_TTL') ?? '3600'),
    refreshTokenTtl: parseField('OAUTH_REFRESH_TOKEN_TTL', seconds, get('OAUTH_REFRESH_TOKEN_TTL') ?? '2592000'),
    authCodeTtl: parseField('OAUTH_AUTH_CODE_TTL', seconds, get('OAUTH_AUTH_CODE_TTL') ?? '600'),
    refreshReuseGrace: parseField(
      'OAUTH_REFRESH_REUSE_GRACE',
      z.coerce.number().min(0, 'expected zero or more seconds'),
      get('OAUTH_REFRESH_REUSE_GRACE') ?? '30',
    ),
    cleanupInterval: parseField('OAUTH_CLEANUP_INTERVAL', seconds, get('OAUTH_CLEANUP_INTERVAL') ?? '3600'),
    validScopes,
    defaultScopes,
    resources,
    introspectionSecret,
    trustProxy: parseTrustProxy(get('TRUST_PROXY')),
    logLevel,
    maxClients: parseField('OAUTH_MAX_CLIENTS', positiveInt, get('OAUTH_MAX_CLIENTS') ?? '10000'),
    registrationRateLimit: parseField(
      'OAUTH_REGISTRATION_RATE_LIMIT',
      positiveInt,
      get('OAUTH_REGISTRATION_RATE_LIMIT') ?? '30',
    ),
    tokenRateLimit: parseField('OAUTH_TOKEN_RATE_LIMIT', positiveInt, get('OAUTH_TOKEN_RATE_LIMIT') ?? '300'),
    authorizeRateLimit: parseField('OAUTH_AUTHORIZE_RATE_LIMIT', positiveInt, get('OAUTH_AUTHORIZE_RATE_LIMIT') ?? '60'),
    introspectionRateLimit: parseField(
      'OAUTH_INTROSPECTION_RATE_LIMIT',
      positiveInt,
      get('OAUTH_INTROSPECTION_RATE_LIMIT') ?? '60',
    ),
    maxBodyBytes: parseField(
      'OAUTH_MAX_BODY_BYTES',
      // Below 1 KiB a Claude registration no longer fits; above 1 MiB a body is an attack.
      positiveInt.min(1024, 'expected at least 1024 bytes').max(1_048_576, 'expected at most 1048576 bytes'),
      get('OAUTH_MAX_BODY_BYTES') ?? '16384',
    ),
    journalCompactBytes: parseField('OAUTH_JOURNAL_COMPACT_BYTES', positiveInt, get('OAUTH_JOURNAL_COMPACT_BYTES') ?? '4194304'),
    pinMaxFailuresPerHour: parseField(
      'OAUTH_PIN_MAX_FAILURES_PER_HOUR',
      positiveInt,
      get('OAUTH_PIN_MAX_FAILURES_PER_HOUR') ?? '30',
    ),
    pinMaxAttemptsPerRequest: parseField(
      'OAUTH_PIN_MAX_ATTEMPTS_PER_REQUEST',
      positiveInt,
      get('OAUTH_PIN_MAX_ATTEMPTS_PER_REQUEST') ?? '5',
    ),
    adminIdleTimeout: parseField('OAUTH_ADMIN_IDLE_TIMEOUT', seconds, get('OAUTH_ADMIN_IDLE_TIMEOUT') ?? '900'),
    cimdEnabled: parseBoolean('OAUTH_CIMD_ENABLED', get('OAUTH_CIMD_ENABLED'), true),
    cimdCaFile: get('OAUTH_CIMD_CA_FILE'),
    cimdAllowPrivateAddresses: parseBoolean('OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES', get('OAUTH_CIMD_ALLOW_PRIVATE_ADDRESSES'), false),
    gatewayConfigFile: get('OAUTH_GATEWAY_CONFIG'),
    gatewayIdleTimeout: parseField('OAUTH_GATEWAY_IDLE_TIMEOUT', seconds, get('OAUTH_GATEWAY_IDLE_TIMEOUT') ?? '900'),
    gatewayMaxProcesses: parseField('OAUTH_GATEWAY_MAX_PROCESSES', positiveInt, get('OAUTH_GATEWAY_MAX_PROCESSES') ?? '8'),
    gatewayUpstreamTimeout: parseField('OAUTH_GATEWAY_UPSTREAM_TIMEOUT', seconds, get('OAUTH_GATEWAY_UPSTREAM_TIMEOUT') ?? '60'),
  };
}

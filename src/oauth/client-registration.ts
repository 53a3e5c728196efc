import type { Logger } from 'pino';
import { z } from 'zod';
import { clientRegistered, clientsDeleted } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import { toEpochSeconds, type Clock } from '../clock.js';
import { hashSecret, newSecret, type RandomSource } from '../crypto/secrets.js';
import { CLIENT_AUTH_METHODS, type ClientMetadata, type ClientRecord, type Store } from '../store/types.js';
import { hasUnsafeDisplayChars, UNSAFE_DISPLAY_REASON } from './display-text.js';
import { invalidClientMetadata, invalidRedirectUri, OAuthError } from './errors.js';
import { GRANT_TYPES } from './grants/index.js';
import { checkRedirectUri } from './redirect-uri.js';

/** Limits that keep one anonymous registration small; the body limit is enforced by HTTP. */
export const REGISTRATION_LIMITS = {
  redirectUris: 20,
  stringLength: 1000,
  uriLength: 2000,
  contacts: 10,
} as const;

/** RFC 7591 §2. Null means absent: some clients send nulls for fields they leave out. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (v === null ? undefined : v), schema.optional());

const text = z
  .string()
  .max(REGISTRATION_LIMITS.stringLength, 'is too long')
  .refine((v) => !hasUnsafeDisplayChars(v), UNSAFE_DISPLAY_REASON);

const webUri = z
  .string()
  .max(REGISTRATION_LIMITS.uriLength, 'is too long')
  .refine((v) => !hasUnsafeDisplayChars(v), UNSAFE_DISPLAY_REASON)
  .refine((v) => {
    try {
      return ['https:', 'http:'].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

const requestSchema = z.object({
  redirect_uris: z
    .array(z.string({ error: 'must be strings' }), { error: 'must be an array of URIs' })
    .min(1, 'must list at least one URI')
    .max(REGISTRATION_LIMITS.redirectUris, `may list at most ${REGISTRATION_LIMITS.redirectUris} URIs`),
  token_endpoint_auth_method: optional(z.enum(CLIENT_AUTH_METHODS, { error: `must be one of ${CLIENT_AUTH_METHODS.join(', ')}` })),
  grant_types: optional(z.array(z.string()).max(10)),
  response_types: optional(z.array(z.string()).max(10)),
  client_name: optional(text),
  client_uri: optional(webUri),
  logo_uri: optional(webUri),
  tos_uri: optional(webUri),
  policy_uri: optional(webUri),
  scope: optional(text),
  contacts: optional(z.array(text).max(REGISTRATION_LIMITS.contacts)),
  software_id: optional(text),
  software_version: optional(text),
  application_type: optional(z.enum(['web', 'native'], { error: 'must be "web" or "native"' })),
});

export interface RegistrationResult {
  record: ClientRecord;
  /** The RFC 7591 §3.2.1 response: never contains null, only the secret in clear. */
  response: Record<string, unknown>;
}

/**
 * Validates a registration request (RFC 7591 §2, §3.2.2) and builds the client record and
 * the response. Pure: the caller stores the record.
 */
export function registerClient(body: unknown, now: number, random: RandomSource): RegistrationResult {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw invalidClientMetadata('The request body must be a JSON object of client metadata');
  }
  // Redirect URIs first: their error code is the more specific one (RFC 7591 §3.2.2).
  const uris = (body as Record<string, unknown>).redirect_uris;
  if (Array.isArray(uris)) {
    for (const uri of uris) {
      if (typeof uri !== 'string') throw invalidRedirectUri('Every redirect URI must be a string');
      const check = checkRedirectUri(uri);
      if (!check.ok) throw invalidRedirectUri(`The redirect URI "${uri.slice(0, 200)}" ${check.reason}`);
    }
  }
  const parsed = requestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'metadata';
    const error = new OAuthError(
      field === 'redirect_uris' ? 'invalid_redirect_uri' : 'invalid_client_metadata',
      `${field} ${issue?.message ?? 'is invalid'}`,
    );
    throw error;
  }
  const req = parsed.data;

  // Omitted grant types mean both we support: every MCP host wants refresh tokens, and
  // RFC 7591 §3.2.1 lets the server fill in values it registered.
  const grantTypes = req.grant_types ?? [...GRANT_TYPES];
  const unsupported = grantTypes.filter((g) => !GRANT_TYPES.includes(g));
  if (unsupported.length > 0) {
    throw invalidClientMetadata(`Unsupported grant_types: ${unsupported.join(', ')} (supported: ${GRANT_TYPES.join(', ')})`);
  }
  const responseTypes = req.response_types ?? ['code'];
  if (responseTypes.some((r) => r !== 'code')) {
    throw invalidClientMetadata('Only the "code" response type is supported');
  }
  // RFC 7591 §2.1: grant types and response types must agree.
  if (grantTypes.includes('authorization_code') !== responseTypes.includes('code')) {
    throw invalidClientMetadata('grant_types "authorization_code" and response_types "code" must be registered together');
  }
  if (!grantTypes.includes('authorization_code')) {
    throw invalidClientMetadata('grant_types must include "authorization_code"');
  }

  // RFC 7591 §2: the default method is client_secret_basic.
  const authMethod = req.token_endpoint_auth_method ?? 'client_secret_basic';
  const metadata: ClientMetadata = {
    redirect_uris: req.redirect_uris,
    token_endpoint_auth_method: authMethod,
    grant_types: grantTypes,
    response_types: responseTypes,
  };
  for (const key of [
    'client_name',
    'client_uri',
    'logo_uri',
    'tos_uri',
    'policy_uri',
    'scope',
    'contacts',
    'software_id',
    'software_version',
    'application_type',
  ] as const) {
    if (req[key] !== undefined) (metadata as unknown as Record<string, unknown>)[key] = req[key];
  }

  const clientId = newSecret(random, 16);
  const confidential = authMethod !== 'none';
  const secret = confidential ? newSecret(random) : undefined;
  const record: ClientRecord = {
    clientId,
    issuedAt: now,
    metadata,
    ...(secret ? { clientSecretHash: hashSecret(secret) } : {}),
  };
  const response: Record<string, unknown> = {
    client_id: clientId,
    client_id_issued_at: toEpochSeconds(now),
    ...(secret ? { client_secret: secret, client_secret_expires_at: 0 } : {}),
    ...metadata,
  };
  return { record, response };
}

export interface RegistrationDeps {
  store: Pick<Store, 'clientCount' | 'putClient' | 'listClients' | 'deleteUnusedClients'>;
  audit: Pick<AuditLog, 'record'>;
  clock: Clock;
  random: RandomSource;
  logger: Logger;
  /** OAUTH_MAX_CLIENTS. */
  maxClients: number;
}

/**
 * A registration from start to finish: make room under the client cap, validate it, store the
 * client durably, record it in the audit log, and return the RFC 7591 §3.2.1 response to send
 * with 201.
 *
 * At the cap, the oldest client the owner never approved (and that was never used) makes room:
 * registration is open, so refusing at the cap would let a flood of registrations block every
 * new connection (Claude registers anew for each) for as long as the flood lasts. A client
 * only needs to survive the minutes between registering and its approval; approved clients
 * are never evicted. Only when every client is approved or in use is registration refused.
 */
export async function registerAndStoreClient(deps: RegistrationDeps, body: unknown, ip?: string): Promise<Record<string, unknown>> {
  const { record, response } = registerClient(body, deps.clock.now(), deps.random);
  if ((await deps.store.clientCount()) >= deps.maxClients && !(await evictOldestUnapproved(deps))) {
    throw new OAuthError(
      'access_denied',
      `This server has reached its limit of ${deps.maxClients} registered clients, all of them approved or in use; its owner can delete unused clients or raise OAUTH_MAX_CLIENTS`,
      403,
    );
  }
  // The client and its audit event are written side by side (two files, or two statements),
  // and the 201 waits for both: one disk wait instead of two. If either fails the client is
  // answered 503 and registers again; the one that did land is harmless (an event naming a
  // client that was never answered, or a client nobody uses, deleted after
  // OAUTH_UNUSED_CLIENT_TTL), and a registration that was answered is always in the log.
  await Promise.all([
    deps.store.putClient(record),
    deps.audit.record(clientRegistered({ clientId: record.clientId, clientName: record.metadata.client_name, ip, authMethod: record.metadata.token_endpoint_auth_method })),
  ]);
  deps.logger.info(
    { clientId: record.clientId, clientName: record.metadata.client_name, authMethod: record.metadata.token_endpoint_auth_method },
    'client registered',
  );
  return response;
}

/** Deletes the oldest never-approved, never-used client to make room; false if there is none. */
async function evictOldestUnapproved(deps: RegistrationDeps): Promise<boolean> {
  const [oldest] = await deps.store.listClients({ unapprovedOnly: true, limit: 1 });
  if (!oldest) return false;
  const evicted = await deps.store.deleteUnusedClients(oldest.issuedAt + 1);
  // The count is known only once they are gone, so the event follows the deletion; the log
  // line comes first, so that even if the event cannot be written (the registration then
  // answers 503) the eviction is on record somewhere.
  if (evicted > 0) deps.logger.warn({ evicted, registeredAt: new Date(oldest.issuedAt).toISOString() }, 'client cap reached: deleted the oldest never-approved client(s) to make room');
  if (evicted > 0) await deps.audit.record(clientsDeleted({ count: evicted, actor: 'system', reason: 'cap' }));
  return evicted > 0;
}

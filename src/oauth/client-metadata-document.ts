import { z } from 'zod';
import type { ClientMetadata, ClientRecord } from '../store/types.js';
import { hasUnsafeDisplayChars, UNSAFE_DISPLAY_REASON } from './display-text.js';
import { GRANT_TYPES } from './grants/index.js';
import { checkRedirectUri } from './redirect-uri.js';

/**
 * OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, used by
 * MCP since 2025-11-25): a client_id that is an https URL names a JSON document, served by the
 * client's own web site, holding its metadata. No registration is stored; the document is the
 * registration.
 */

/** The largest document accepted (the draft suggests 5 KB). */
export const MAX_DOCUMENT_BYTES = 5 * 1024;
export const FETCH_TIMEOUT_MS = 5_000;

/** An https URL with a path (§3: not the bare origin), without fragment, credentials or dot segments. */
export function isClientIdMetadataUrl(clientId: string): boolean {
  if (!clientId.startsWith('https://') || clientId.length > 2000) return false;
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    return false;
  }
  return (
    url.pathname !== '/' &&
    url.hash === '' &&
    !clientId.includes('#') &&
    url.username === '' &&
    url.password === '' &&
    // §3: the URL must be used exactly as given; a URL parser that rewrites it would change the identity.
    url.href === clientId
  );
}

export class MetadataDocumentError extends Error {
  override name = 'MetadataDocumentError';
}

const text = z.string().max(1000).refine((v) => !hasUnsafeDisplayChars(v), UNSAFE_DISPLAY_REASON);
const documentSchema = z.object({
  client_id: z.string(),
  redirect_uris: z.array(z.string()).min(1).max(20),
  token_endpoint_auth_method: z.string().optional(),
  grant_types: z.array(z.string()).max(10).optional(),
  response_types: z.array(z.string()).max(10).optional(),
  client_name: text.optional(),
  client_uri: text.optional(),
  logo_uri: text.optional(),
  scope: text.optional(),
  software_id: text.optional(),
  software_version: text.optional(),
});

/**
 * Turns a fetched document into the client record the rest of the server works with, or
 * says precisely what is wrong with it.
 */
export function clientFromMetadataDocument(url: string, body: unknown, now: number): ClientRecord {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new MetadataDocumentError('the document is not a JSON object');
  }
  const raw = body as Record<string, unknown>;
  // §4.1: the document names itself; anything else could be a document copied from another client.
  if (raw.client_id !== url) {
    // The document is hostile input: describe a non-string without calling its toString.
    const shown = typeof raw.client_id === 'string' ? JSON.stringify(raw.client_id).slice(0, 200) : `of type ${typeof raw.client_id}`;
    throw new MetadataDocumentError(`its client_id ${shown} is not the URL it was fetched from`);
  }
  // §4.1: a document anyone can read must not carry a shared secret.
  if (raw.client_secret !== undefined || raw.client_secret_expires_at !== undefined) {
    throw new MetadataDocumentError('it contains a client_secret, which a public document must never hold');
  }
  const parsed = documentSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MetadataDocumentError(`${issue?.path.join('.') || 'the document'}: ${issue?.message ?? 'is invalid'}`);
  }
  const doc = parsed.data;
  // Public clients only for now: without a key set, the client has nothing it could prove.
  // An absent method cannot mean a secret either, since the document is public.
  if (doc.token_endpoint_auth_method !== undefined && doc.token_endpoint_auth_method !== 'none') {
    throw new MetadataDocumentError(`token_endpoint_auth_method "${doc.token_endpoint_auth_method.slice(0, 50)}" is not supported; only "none" is`);
  }
  for (const uri of doc.redirect_uris) {
    const check = checkRedirectUri(uri);
    if (!check.ok) throw new MetadataDocumentError(`the redirect URI "${uri.slice(0, 200)}" ${check.reason}`);
  }
  const grantTypes = doc.grant_types ?? [...GRANT_TYPES];
  if (!grantTypes.includes('authorization_code') || grantTypes.some((g) => !GRANT_TYPES.includes(g))) {
    throw new MetadataDocumentError(`grant_types must include authorization_code and may add only ${GRANT_TYPES.filter((g) => g !== 'authorization_code').join(', ')}`);
  }
  const responseTypes = doc.response_types ?? ['code'];
  if (responseTypes.some((r) => r !== 'code')) throw new MetadataDocumentError('only the "code" response type is supported');

  const metadata: ClientMetadata = {
    redirect_uris: doc.redirect_uris,
    token_endpoint_auth_method: 'none',
    grant_types: grantTypes,
    response_types: responseTypes,
  };
  for (const key of ['client_name', 'client_uri', 'logo_uri', 'scope', 'software_id', 'software_version'] as const) {
    if (doc[key] !== undefined) metadata[key] = doc[key];
  }
  return { clientId: url, issuedAt: now, metadata };
}

/** The longest time a fetched document is reused, whatever its headers say. */
export const MAX_DOCUMENT_CACHE_MS = 24 * 3_600_000;
/** Reuse time when the response says nothing about caching (RFC 9111 §4.2.2 allows a heuristic). */
export const DEFAULT_DOCUMENT_CACHE_MS = 5 * 60_000;

/** How long a document may be reused, from its Cache-Control header (RFC 9111 §5.2.2). */
export function documentCacheLifetime(cacheControl: string | undefined): number {
  if (!cacheControl) return DEFAULT_DOCUMENT_CACHE_MS;
  const directives = cacheControl.toLowerCase().split(',').map((d) => d.trim());
  if (directives.some((d) => d === 'no-store' || d === 'no-cache')) return 0;
  const maxAge = directives.map((d) => /^max-age=(\d+)$/.exec(d)?.[1]).find((v) => v !== undefined);
  if (maxAge === undefined) return DEFAULT_DOCUMENT_CACHE_MS;
  return Math.min(Number(maxAge) * 1000, MAX_DOCUMENT_CACHE_MS);
}

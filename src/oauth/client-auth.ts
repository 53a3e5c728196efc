import type { ClientRecord, Store } from '../store/types.js';
import { invalidClient, invalidRequest, OAuthError } from './errors.js';
import { hashSecret, safeEqual } from '../crypto/secrets.js';

/** What the client presented at the token, revocation or introspection endpoint. */
export interface ClientCredentials {
  /** From the Authorization: Basic header, if one was sent. */
  basic?: { clientId: string; clientSecret: string };
  /** client_id and client_secret from the form body. */
  bodyClientId?: string;
  bodyClientSecret?: string;
}

/** invalid_client with the WWW-Authenticate challenge RFC 6749 §5.2 asks for after Basic. */
export class InvalidClientBasicError extends OAuthError {
  constructor(description: string, detail?: string) {
    super('invalid_client', description, 401, detail);
  }
}

/**
 * RFC 6749 §2.3.1: client_id and secret are form-urlencoded before base64. Returns
 * undefined when the header is not Basic; throws when it is Basic but malformed.
 */
export function parseBasicAuth(header: string | undefined): ClientCredentials['basic'] {
  if (!header) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=._~-]*)\s*$/i.exec(header);
  if (!match) {
    if (/^Basic\b/i.test(header)) throw new InvalidClientBasicError('Malformed Basic authorization header');
    return undefined;
  }
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidClientBasicError('Malformed Basic authorization header');
  try {
    const decode = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));
    return { clientId: decode(decoded.slice(0, colon)), clientSecret: decode(decoded.slice(colon + 1)) };
  } catch {
    throw new InvalidClientBasicError('Malformed Basic authorization header');
  }
}

/**
 * Authenticates the client as it registered (RFC 6749 §2.3). A confidential client may send
 * its secret by Basic or in the body; both prove the same secret, and hosts are not always
 * careful about which one they registered. A public client sends only its client_id.
 * An unknown client is invalid_client (401): MCP clients re-register on it.
 */
export async function authenticateClient(clients: Pick<Store, 'getClient'>, creds: ClientCredentials): Promise<ClientRecord> {
  const viaBasic = creds.basic !== undefined;
  const fail = (description: string): OAuthError =>
    viaBasic ? new InvalidClientBasicError(description) : invalidClient(description);

  if (viaBasic && creds.bodyClientSecret !== undefined) {
    throw invalidRequest('Send client credentials once: either in the Authorization header or in the body');
  }
  if (viaBasic && creds.bodyClientId !== undefined && creds.bodyClientId !== creds.basic?.clientId) {
    throw fail('client_id in the body does not match the Authorization header');
  }
  const clientId = creds.basic?.clientId ?? creds.bodyClientId;
  const secret = creds.basic?.clientSecret ?? creds.bodyClientSecret;
  if (!clientId) throw fail('Client authentication is required: send client_id');

  const client = await clients.getClient(clientId);
  if (!client) throw fail('Unknown client_id: this client is not registered here. Register again.');

  if (client.clientSecretHash === undefined) {
    if (secret) throw fail('This client is registered as a public client and must not send a secret');
    return client;
  }
  if (!secret) throw fail('This client must authenticate with its client_secret');
  if (!safeEqual(hashSecret(secret), client.clientSecretHash)) throw fail('Wrong client_secret');
  return client;
}

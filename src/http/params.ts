import express, { type Request } from 'express';
import { parseBasicAuth, type ClientCredentials } from '../oauth/client-auth.js';
import { invalidRequest } from '../oauth/errors.js';

type Bag = Record<string, unknown>;

function bagOf(value: unknown): Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Bag) : {};
}

/**
 * Reads named parameters as single strings. RFC 6749 §3.1/§3.2: parameters must not be
 * repeated; a repeated or non-string value is invalid_request.
 */
export function singleParams<K extends string>(source: unknown, names: readonly K[]): Partial<Record<K, string>> {
  const bag = bagOf(source);
  const out: Partial<Record<K, string>> = {};
  for (const name of names) {
    const value = bag[name];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw invalidRequest(`The ${name} parameter must be sent once, as a string`);
    out[name] = value;
  }
  return out;
}

/** The form body, or invalid_request if the client sent a body that is not a form. */
export function formBody(req: Request): Bag {
  // req.is() is null when there is no body at all, false when the body has another type.
  if (req.is('application/x-www-form-urlencoded') === false) {
    throw invalidRequest('The body must be application/x-www-form-urlencoded');
  }
  return bagOf(req.body);
}

/** Query parameters as strings or arrays (repeated), for the authorization request. */
export function queryParams(req: Request): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [key, value] of Object.entries(bagOf(req.query))) {
    if (typeof value === 'string') out[key] = value;
    else if (Array.isArray(value)) out[key] = value.map(String);
    else out[key] = [];
  }
  return out;
}

/** The form parser of the JSON endpoints: OAUTH_MAX_BODY_BYTES, and few fields (none takes more than 8). */
export const formParser = (maxBodyBytes: number) => express.urlencoded({ extended: false, limit: maxBodyBytes, parameterLimit: 50 });

/** The client credentials of a request to /token or /revoke: Basic header and/or body (RFC 6749 §2.3.1). */
export function clientCredentials(req: Request, body: Bag): ClientCredentials {
  const p = singleParams(body, ['client_id', 'client_secret']);
  const basic = parseBasicAuth(req.headers.authorization);
  return {
    ...(basic ? { basic } : {}),
    ...(p.client_id !== undefined ? { bodyClientId: p.client_id } : {}),
    ...(p.client_secret !== undefined ? { bodyClientSecret: p.client_secret } : {}),
  };
}

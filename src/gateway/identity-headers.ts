import type { VerifiedToken } from './verified-token.js';

/**
 * What the upstream learns about the caller, instead of the caller's token (MCP
 * authorization spec, "Token Passthrough" is forbidden). The upstream can trust these only
 * because nothing but the gateway can reach it, and the gateway drops any X-Latchkey-*
 * header a client sends.
 */
export function identityHeaders(token: VerifiedToken): Record<string, string> {
  const headers: Record<string, string> = {
    'X-Latchkey-Client-Id': headerValue(token.clientId),
    'X-Latchkey-Scope': headerValue(token.scopes.join(' ')),
  };
  if (token.clientName !== undefined) headers['X-Latchkey-Client-Name'] = headerValue(token.clientName);
  if (token.subject !== undefined) headers['X-Latchkey-Subject'] = headerValue(token.subject);
  if (token.email !== undefined) headers['X-Latchkey-Email'] = headerValue(token.email);
  if (token.username !== undefined) headers['X-Latchkey-Username'] = headerValue(token.username);
  return headers;
}

/**
 * Visible ASCII and spaces pass as they are; every other byte of the UTF-8 form, and "%"
 * itself, is percent-encoded (RFC 3986 §2.1), so a client name in any script, or one with a
 * line break, is a valid header value (RFC 9110 §5.5) that decodeURIComponent restores.
 */
export function headerValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

import { invalidTarget } from './errors.js';

/**
 * RFC 8707 resource indicators. MCP clients send the MCP server URL as the user typed it,
 * so the only normalization is a trailing "/" on a bare origin ("https://mcp.example.com/"
 * is "https://mcp.example.com"). The configured string is what goes into `aud`.
 */
export function sameResource(a: string, b: string): boolean {
  if (a === b) return true;
  // Scheme and host compare case-insensitively (RFC 3986 §6.2.2.1), paths exactly.
  try {
    const ua = new URL(a);
    const ub = new URL(b);
    const path = (u: URL): string => (u.pathname === '/' ? '' : u.pathname);
    return ua.origin === ub.origin && path(ua) === path(ub) && ua.search === ub.search;
  } catch {
    return false;
  }
}

/** The configured resource a request names, or the default one when it names none. */
export function resolveResource(requested: string | undefined, configured: readonly string[]): string {
  const fallback = configured[0];
  if (fallback === undefined) throw new Error('no protected resource configured');
  if (requested === undefined || requested === '') return fallback;
  if (requested.includes('#')) throw invalidTarget('The resource must not contain a fragment (RFC 8707 §2)');
  const match = configured.find((c) => sameResource(c, requested));
  if (!match) throw invalidTarget(`Unknown resource "${requested.slice(0, 200)}": this server issues tokens only for ${configured.join(', ')}`);
  return match;
}

/** At /token the resource, when sent again, must name the audience the grant was bound to. */
export function checkBoundResource(requested: string | undefined, bound: string): void {
  if (requested === undefined || requested === '') return;
  if (!sameResource(requested, bound)) {
    throw invalidTarget('The resource does not match the one this grant was issued for');
  }
}

import { invalidScope } from './errors.js';

export function parseScope(scope: string | undefined): string[] {
  if (!scope) return [];
  return [...new Set(scope.split(' ').filter((s) => s.length > 0))];
}

export const formatScope = (scopes: readonly string[]): string => scopes.join(' ');

/**
 * Scopes for a new authorization. Clients send scopes we don't know (Claude sends
 * "claudeai", ChatGPT whatever it saw elsewhere): those are dropped rather than refused,
 * and a request left with none gets the configured defaults.
 */
export function resolveRequestedScopes(
  requested: string | undefined,
  valid: readonly string[],
  defaults: readonly string[],
): string[] {
  const known = parseScope(requested).filter((s) => valid.includes(s));
  return known.length > 0 ? known : [...defaults];
}

/**
 * RFC 6749 §6: a refresh may narrow the grant's scope but never go outside it: "the requested
 * scope MUST NOT include any scope not originally granted". Any such scope, known to this
 * server or not, is invalid_scope, never silently dropped (unlike at /authorize, where
 * unknown scopes are dropped because hosts ask for their own). An empty request keeps the
 * grant's scope.
 */
export function narrowScopes(requested: string | undefined, granted: readonly string[]): string[] {
  const asked = parseScope(requested);
  if (asked.length === 0) return [...granted];
  const outside = asked.filter((s) => !granted.includes(s));
  if (outside.length > 0) throw invalidScope(`Scope not granted to this refresh token: ${outside.join(' ').slice(0, 200)}`);
  return asked;
}

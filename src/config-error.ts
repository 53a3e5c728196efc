/**
 * What config.ts and identity/identity-config.ts share below both: the one-line error a bad
 * variable stops startup with, and the readers of list and scope values.
 */

/** A configuration variable is wrong: startup stops with one line naming it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** RFC 6749 §3.3 scope-token: the characters a scope may use. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/** A list variable's entries: separated by commas and/or white space, blanks dropped. */
export function listOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

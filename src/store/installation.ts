import type { AccessTokenRecord, AuditEvent, ClientRecord, CodeRecord, KvEntry, RefreshTokenRecord } from './records.js';

/**
 * A whole installation's state, as `latchkey export` reads it from one backend and
 * `latchkey import` writes it to another: every record as stored (hashes only, consumed codes
 * and rotated refresh tokens included, so replay and reuse are still recognised after the
 * move), the key-value entries, the audit log and the signing key, so that no connector has to
 * reconnect. The counters (rate-limit windows) are left behind: they only ever hold the last
 * minutes, and PIN failures are key-value entries.
 */
export interface Installation {
  clients: ClientRecord[];
  codes: CodeRecord[];
  accessTokens: AccessTokenRecord[];
  refreshTokens: RefreshTokenRecord[];
  kv: KvEntry[];
  /** Oldest first. */
  audit: AuditEvent[];
  /**
   * The key that signs consent forms, known-device cookies and owner sign-in forms; absent when
   * the installation never created one.
   */
  consentKey: Buffer | undefined;
}

export type InstallationCounts = Record<Exclude<keyof Installation, 'consentKey'>, number>;

export function installationCounts(i: Installation): InstallationCounts {
  return {
    clients: i.clients.length,
    codes: i.codes.length,
    accessTokens: i.accessTokens.length,
    refreshTokens: i.refreshTokens.length,
    kv: i.kv.length,
    audit: i.audit.length,
  };
}

/** Whether nothing would be lost by replacing it: no record, entry or event (a key alone is nothing to lose). */
export const holdsNothing = (counts: InstallationCounts): boolean => Object.values(counts).every((n) => n === 0);

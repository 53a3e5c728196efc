import { toEpochSeconds, type Clock } from '../clock.js';
import type { Store } from '../store/types.js';

/**
 * GET /oauth/stats: counts of the store for anyone; uptime and version only for `insider`s
 * (the owner's tools). Uptime tells an attacker when a restart cleared the in-memory limits,
 * and the version which advisories apply.
 */
export async function serverStats(
  store: Store,
  clock: Clock,
  server: { startedAt: number; version: string },
  insider: boolean,
): Promise<Record<string, number | string>> {
  const now = clock.now();
  const counts = await store.counts(now);
  return {
    clients: counts.clients,
    authorization_codes: counts.codes,
    access_tokens: counts.accessTokens,
    refresh_tokens: counts.refreshTokens,
    ...(insider ? { uptime_seconds: toEpochSeconds(now - server.startedAt), version: server.version } : {}),
  };
}

/**
 * GET /healthz: healthy when state changes can be made durable. A failing compaction is a
 * warning, not an outage: every write still reaches the journal.
 */
export async function healthReport(store: Store): Promise<{ healthy: boolean; body: Record<string, string> }> {
  const status = await store.health();
  if (!status.ok) return { healthy: false, body: status.error === undefined ? { status: 'error' } : { status: 'error', store: status.error } };
  return { healthy: true, body: status.compactionError === undefined ? { status: 'ok' } : { status: 'ok', compaction: status.compactionError } };
}

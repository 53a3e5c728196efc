import { toEpochSeconds, type Clock } from '../clock.js';
import type { Store, StoreHealth } from '../store/types.js';

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
export async function healthReport(health: () => Promise<StoreHealth>): Promise<{ healthy: boolean; body: Record<string, string | string[]> }> {
  const status = await health();
  const body: Record<string, string | string[]> = { status: status.ok ? 'ok' : 'error' };
  if (!status.ok && status.error !== undefined) body.store = status.error;
  if (status.ok && status.compactionError !== undefined) body.compaction = status.compactionError;
  // Data kept aside is the owner's to look at; the service works, so it is still healthy.
  if (status.setAside) body.setAside = status.setAside;
  return { healthy: status.ok, body };
}

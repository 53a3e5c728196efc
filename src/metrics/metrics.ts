import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { OAuthObserver, RevocationReason } from '../oauth/observer.js';
import type { PinPurpose } from '../oauth/pin-guard.js';
import type { StoreObserver } from '../store/observed-backend.js';

/**
 * Everything `GET /metrics` reports, in the Prometheus text format (prom-client). It hears
 * the rest of Latchkey only through observer interfaces (the protocol rules', the store's,
 * the HTTP layer's request observer), so nothing else imports prom-client. Labels are kinds,
 * never identities: no client id, token, address or path a client chose, so the number of
 * series stays small and fixed whatever the traffic.
 */

/** Connections of a PostgreSQL pool (PostgresBackend.poolStats()). */
export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface MetricsOptions {
  /** The database pool's figures, read at each scrape; absent on the file backend. */
  poolStats?: () => PoolStats;
}

/** Request latency: from a cached introspection (sub-millisecond) to a slow consent page. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Store latency: from an in-memory read to a statement that waits on a lock or a timeout. */
const STORE_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
const METHODS = new Set(['GET', 'POST', 'DELETE', 'OPTIONS', 'HEAD', 'PUT', 'PATCH']);

export class Metrics implements OAuthObserver, StoreObserver {
  private readonly registry = new Registry();
  private readonly requests: Histogram<'endpoint' | 'method' | 'status'>;
  private readonly tokens: Counter<'grant_type'>;
  private readonly revoked: Counter<'reason'>;
  private readonly pinFailures: Counter<'purpose'>;
  private readonly pinLockouts: Counter<'purpose'>;
  private readonly storeOps: Histogram<'backend' | 'operation'>;
  private readonly storeErrors: Counter<'backend' | 'operation'>;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    this.requests = new Histogram({
      name: 'latchkey_http_request_duration_seconds',
      help: 'HTTP requests by endpoint, method and status, with the time to the response (its _count is the number of requests)',
      labelNames: ['endpoint', 'method', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.tokens = new Counter({
      name: 'latchkey_tokens_issued_total',
      help: 'Token responses by grant type: authorization_code (a new grant) or refresh_token (a refresh)',
      labelNames: ['grant_type'],
      registers,
    });
    this.revoked = new Counter({
      name: 'latchkey_grants_revoked_total',
      help: 'Grants revoked, by reason: code_replay, refresh_reuse (both mean a leaked credential), client_request (RFC 7009), owner or person (from their account page)',
      labelNames: ['reason'],
      registers,
    });
    this.pinFailures = new Counter({ name: 'latchkey_pin_failures_total', help: 'Wrong PINs counted, by where they were typed (consent or admin)', labelNames: ['purpose'], registers });
    this.pinLockouts = new Counter({
      name: 'latchkey_pin_lockouts_total',
      help: 'PIN budgets used up by a wrong PIN (sign-in from unknown browsers paused for up to an hour), by purpose',
      labelNames: ['purpose'],
      registers,
    });
    this.storeOps = new Histogram({
      name: 'latchkey_store_operation_duration_seconds',
      help: 'Storage operations by backend and operation, with the time until durable (files: journal fsync; postgres: database round trips)',
      labelNames: ['backend', 'operation'],
      buckets: STORE_BUCKETS,
      registers,
    });
    this.storeErrors = new Counter({
      name: 'latchkey_store_operation_errors_total',
      help: 'Storage operations that failed (the disk or the database refused or could not be reached), by backend and operation',
      labelNames: ['backend', 'operation'],
      registers,
    });
    const { poolStats } = options;
    if (poolStats) {
      new Gauge({
        name: 'latchkey_database_pool_connections',
        help: 'Connections of the PostgreSQL pool, by state: in_use or idle',
        labelNames: ['state'],
        registers,
        collect() {
          const stats = poolStats();
          this.set({ state: 'in_use' }, stats.total - stats.idle);
          this.set({ state: 'idle' }, stats.idle);
        },
      });
      new Gauge({
        name: 'latchkey_database_pool_waiting',
        help: 'Requests waiting for a PostgreSQL connection (all in use)',
        registers,
        collect() {
          this.set(poolStats().waiting);
        },
      });
    }
    collectDefaultMetrics({ register: this.registry });
  }

  /** The scrape: the content type to send and the text. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** One finished HTTP request; `endpoint` is a name from a fixed list, never a raw path. */
  request(endpoint: string, method: string, status: number, seconds: number): void {
    this.requests.observe({ endpoint, method: METHODS.has(method) ? method : 'other', status: String(status) }, seconds);
  }

  tokensIssued(grantType: string): void {
    this.tokens.inc({ grant_type: grantType });
  }

  grantRevoked(reason: RevocationReason): void {
    this.revoked.inc({ reason });
  }

  pinFailed(purpose: PinPurpose): void {
    this.pinFailures.inc({ purpose });
  }

  pinLockedOut(purpose: PinPurpose): void {
    this.pinLockouts.inc({ purpose });
  }

  storeOperation(backend: string, operation: string, seconds: number, failed: boolean): void {
    this.storeOps.observe({ backend, operation }, seconds);
    if (failed) this.storeErrors.inc({ backend, operation });
  }
}

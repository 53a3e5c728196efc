import type pg from 'pg';
import type { Logger } from 'pino';
import type { RandomSource } from '../../crypto/secrets.js';
import { StoreOpenError, type Backend, type LoadReport, type StoreHealth } from '../types.js';
import { applyMigrations } from './migrate.js';
import { PostgresAuditLog } from './postgres-audit.js';
import { PostgresCounterStore } from './postgres-counters.js';
import { PostgresKeyValueStore } from './postgres-kv.js';
import { PostgresStore } from './postgres-store.js';
import { createPool, describeUrl, rethrow } from './pool.js';

/** The counters' pool: every request that is rate-limited makes one short statement there. */
const COUNTER_CONNECTIONS = 4;

export interface PostgresBackendOptions {
  /** postgres://… connection URL; TLS as its sslmode says (docs/scaling.md). */
  url: string;
  logger: Logger;
  /** Where a new consent key comes from (the first instance to need one creates it). */
  random: RandomSource;
  /** Longest a statement may run; default 5 s. */
  statementTimeoutMs?: number;
  /** Connections at most; default 10. */
  poolMax?: number;
}

/**
 * Everything in one PostgreSQL database, for one instance or several: the store, the
 * key-value entries, the counters, the audit log and the consent key all live there, so
 * instances behind a load balancer agree on all of them. Opening applies the migrations.
 */
export class PostgresBackend implements Backend {
  readonly kind = 'postgres' as const;
  readonly store: PostgresStore;
  readonly kv: PostgresKeyValueStore;
  readonly counters: PostgresCounterStore;
  readonly audit: PostgresAuditLog;
  private key: Buffer | undefined;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    /** The counters' own few connections, committing asynchronously (see PoolOptions.asyncCommit). */
    private readonly counterPool: pg.Pool,
    logger: Logger,
    private readonly random: RandomSource,
  ) {
    this.store = new PostgresStore(pool, logger);
    this.kv = new PostgresKeyValueStore(pool);
    this.counters = new PostgresCounterStore(counterPool);
    this.audit = new PostgresAuditLog(pool);
  }

  static async open(options: PostgresBackendOptions): Promise<{ backend: PostgresBackend; report: LoadReport }> {
    const where = describeUrl(options.url);
    const timeout = options.statementTimeoutMs !== undefined ? { statementTimeoutMs: options.statementTimeoutMs } : {};
    const pool = createPool({ url: options.url, logger: options.logger, ...timeout, ...(options.poolMax !== undefined ? { max: options.poolMax } : {}) });
    const counterPool = createPool({ url: options.url, logger: options.logger, ...timeout, max: COUNTER_CONNECTIONS, asyncCommit: true });
    try {
      const migrations = await applyMigrations(pool, where, options.logger);
      const backend = new PostgresBackend(pool, counterPool, options.logger, options.random);
      const counts = await backend.store.counts(Date.now());
      return { backend, report: { counts, setAside: [], journal: { files: 0, records: 0, tornRecords: 0, corruptRecords: 0 }, migrations } };
    } catch (err) {
      await counterPool.end().catch(() => undefined);
      await pool.end().catch(() => undefined);
      if (err instanceof StoreOpenError) throw err;
      throw new StoreOpenError(`cannot open the PostgreSQL database ${where}: ${(err as Error).message}. Check OAUTH_DATABASE_URL and that the server accepts connections.`);
    }
  }

  async consentKey(): Promise<Buffer> {
    if (this.key) return this.key;
    try {
      // The first instance to get here creates the key; the others keep theirs out.
      await this.pool.query('INSERT INTO consent_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [this.random(32)]);
      const { rows } = await this.pool.query<{ key: Buffer }>('SELECT key FROM consent_key WHERE id = 1');
      const key = rows[0]?.key;
      if (!key) throw new Error('the consent key row is missing after it was created');
      this.key = key;
      return key;
    } catch (err) {
      return rethrow(err);
    }
  }

  health(): Promise<StoreHealth> {
    return this.store.health();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store.close();
    await this.counterPool.end();
    await this.pool.end();
  }

  /** Connections open, idle, and callers waiting for one, over both pools: for monitoring. */
  poolStats(): { total: number; idle: number; waiting: number } {
    const pools = [this.pool, this.counterPool];
    const sum = (of: (p: pg.Pool) => number): number => pools.reduce((n, p) => n + of(p), 0);
    return { total: sum((p) => p.totalCount), idle: sum((p) => p.idleCount), waiting: sum((p) => p.waitingCount) };
  }
}

import type pg from 'pg';
import type { CounterStore, CounterWindow } from '../types.js';
import { runPrepared } from './pool.js';

/**
 * Fixed-window counters on PostgreSQL (table counters), shared by every instance: rate
 * limits and the PIN failure budget hold across all of them. An increment is one
 * INSERT … ON CONFLICT DO UPDATE, atomic under concurrency; a closed window is restarted in
 * the same statement. Closed windows are deleted by the hourly cleanup.
 */
export class PostgresCounterStore implements CounterStore {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return runPrepared<R>(this.pool, text, values);
  }

  async increment(key: string, windowMs: number, now: number): Promise<CounterWindow> {
    const { rows } = await this.query<{ count: number; reset_at: number }>(
      `INSERT INTO counters (key, count, reset_at) VALUES ($1, 1, $2::bigint + $3::bigint)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN counters.reset_at <= $2 THEN 1 ELSE counters.count + 1 END,
         reset_at = CASE WHEN counters.reset_at <= $2 THEN EXCLUDED.reset_at ELSE counters.reset_at END
       RETURNING count, reset_at`,
      [key, now, windowMs],
    );
    const row = rows[0];
    if (!row) throw new Error('the counter increment returned no row');
    return { count: row.count, resetAt: row.reset_at };
  }

  async get(key: string, now: number): Promise<CounterWindow | undefined> {
    const { rows } = await this.query<{ count: number; reset_at: number }>('SELECT count, reset_at FROM counters WHERE key = $1 AND reset_at > $2', [key, now]);
    const row = rows[0];
    return row && { count: row.count, resetAt: row.reset_at };
  }

  async decrement(key: string, now: number): Promise<void> {
    await this.query('UPDATE counters SET count = count - 1 WHERE key = $1 AND reset_at > $2 AND count > 0', [key, now]);
  }

  async reset(prefix: string): Promise<number> {
    const { rowCount } = await this.query('DELETE FROM counters WHERE starts_with(key, $1)', [prefix]);
    return rowCount ?? 0;
  }
}

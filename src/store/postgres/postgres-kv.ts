import type pg from 'pg';
import type { KeyValueStore } from '../types.js';
import { runPrepared } from './pool.js';

/**
 * The key-value store on PostgreSQL (table kv_entries), shared by every instance. Each
 * check-and-set is one statement: putIfAbsent an INSERT … ON CONFLICT that replaces only an
 * expired entry, take a DELETE … RETURNING, so concurrent callers on any instance see
 * exactly one success.
 */
export class PostgresKeyValueStore implements KeyValueStore {
  constructor(private readonly pool: pg.Pool) {}

  private query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return runPrepared<R>(this.pool, text, values);
  }

  async putIfAbsent(namespace: string, key: string, value: string, expiresAt: number | null, now: number): Promise<boolean> {
    const { rowCount } = await this.query(
      `INSERT INTO kv_entries (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
        WHERE kv_entries.expires_at IS NOT NULL AND kv_entries.expires_at <= $5`,
      [namespace, key, value, expiresAt, now],
    );
    return (rowCount ?? 0) > 0;
  }

  async put(namespace: string, key: string, value: string, expiresAt: number | null): Promise<void> {
    await this.query(
      `INSERT INTO kv_entries (namespace, key, value, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (namespace, key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      [namespace, key, value, expiresAt],
    );
  }

  async get(namespace: string, key: string, now: number): Promise<string | undefined> {
    const { rows } = await this.query<{ value: string }>(
      'SELECT value FROM kv_entries WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)',
      [namespace, key, now],
    );
    return rows[0]?.value;
  }

  async take(namespace: string, key: string, now: number): Promise<string | undefined> {
    const { rows } = await this.query<{ value: string }>(
      'DELETE FROM kv_entries WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3) RETURNING value',
      [namespace, key, now],
    );
    return rows[0]?.value;
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    const { rowCount } = await this.query('DELETE FROM kv_entries WHERE namespace = $1 AND key = $2', [namespace, key]);
    return (rowCount ?? 0) > 0;
  }

  async list(namespace: string, now: number): Promise<{ key: string; value: string; expiresAt: number | null }[]> {
    const { rows } = await this.query<{ key: string; value: string; expires_at: number | null }>(
      // COLLATE "C": the same order as the file backend's (code points), whatever the database's locale.
      'SELECT key, value, expires_at FROM kv_entries WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY key COLLATE "C"',
      [namespace, now],
    );
    return rows.map((r) => ({ key: r.key, value: r.value, expiresAt: r.expires_at }));
  }
}

import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { StoreUnavailableError } from '../types.js';

/**
 * The connection pool, and the one place that decides which database errors mean "try
 * again later" (StoreUnavailableError → 503 with Retry-After upstream) rather than a bug.
 */

export interface PoolOptions {
  /** postgres://user:password@host:port/db?sslmode=… (TLS as the URL says; see docs/scaling.md). */
  url: string;
  logger: Logger;
  /** Longest a statement may run on the server; also bounds how long a request can wait on a slow database. */
  statementTimeoutMs?: number;
  /** Connections at most. */
  max?: number;
  /**
   * Commit without waiting for the WAL to reach the disk (synchronous_commit = off): for
   * the rate-limit counters only, where a crash may forget the last moment's counts (the file
   * backend keeps them in memory and forgets them all) but every commit must not wait for an
   * fsync while holding the row every request of one address updates.
   */
  asyncCommit?: boolean;
}

export const DEFAULT_STATEMENT_TIMEOUT_MS = 5_000;
const DEFAULT_POOL_MAX = 10;
/** BIGINT (epoch milliseconds here) as a JS number: every value Latchkey stores is far below 2^53. */
const INT8_OID = 20;

const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format ?? 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

export function createPool(options: PoolOptions): pg.Pool {
  const statementTimeout = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? DEFAULT_POOL_MAX,
    application_name: 'latchkey',
    // The server cancels a statement after this; the client gives up a little later, in
    // case the server (or the network to it) does not answer at all.
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 2_000,
    lock_timeout: statementTimeout,
    idle_in_transaction_session_timeout: statementTimeout * 2,
    connectionTimeoutMillis: statementTimeout,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    types,
    ...(options.asyncCommit ? { options: '-c synchronous_commit=off' } : {}),
  });
  // An idle connection dropped by the server (restart, failover) is reported here; without a
  // listener it would crash the process. The pool replaces it on the next query.
  pool.on('error', (err: Error & { code?: string }) => {
    options.logger.warn({ errno: err.code, reason: err.message }, 'PostgreSQL closed an idle connection; it will be replaced');
  });
  return pool;
}

/**
 * SQLSTATEs that mean the database cannot serve now, not that the statement is wrong: the
 * classes of connection failures (08), resources (53), shutdown and cancellation, including
 * statement timeouts (57), system errors (58), serialization failures and deadlocks (40),
 * authentication (28) and a missing database (3D); and, alone, a lock timeout (55P03) and a
 * read-only server (25006, as during a failover).
 */
const UNAVAILABLE_CLASSES = ['08', '53', '57', '58', '40', '28', '3D'];
const UNAVAILABLE_CODES = ['55P03', '25006'];

/** Whether `err` is the database being unreachable, restarting, overloaded or too slow. */
export function isUnavailable(err: unknown): boolean {
  // Not `instanceof Error`: errors raised by Node's own sockets may come from another realm.
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  // Errors from the server carry a five-character SQLSTATE; network and driver errors
  // (ECONNREFUSED, "Connection terminated", timeouts) carry none or an errno.
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return UNAVAILABLE_CLASSES.some((c) => code.startsWith(c)) || UNAVAILABLE_CODES.includes(code);
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return typeof message === 'string' && /connect|terminat|timeout|closed|not queryable|ended/i.test(message);
}

/** A short reason, safe to show on /healthz: a code, never a host name or credential. */
export function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  if (e.code === '57014' || e.code === '55P03') return 'database statement timeout';
  // A socket's errno (ECONNREFUSED, ETIMEDOUT, ...): the server cannot be reached at all.
  if (typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return 'database unreachable';
  if (typeof e.code === 'string') return `database unavailable (${e.code})`;
  if (typeof e.message === 'string' && /timeout/i.test(e.message)) return 'database timeout';
  return 'database unreachable';
}

/** Rethrows a database error: StoreUnavailableError if it means "try again later", else as it is. */
export function rethrow(err: unknown): never {
  if (isUnavailable(err)) throw Object.assign(new StoreUnavailableError(reasonOf(err)), { cause: err });
  throw err;
}

/** The URL without its password, for messages: host, port and database. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'the configured database';
  }
}

const statementNames = new Map<string, string>();

/**
 * A statement as a query that is prepared once per connection: PostgreSQL parses and plans
 * it at its first use there, and only binds and runs it afterwards. Planning was more than
 * half of the work of a code exchange's statement (docs/benchmarks.md). The name comes from
 * the text, so each distinct statement is prepared once; every statement of this backend is
 * a fixed text with parameters, so the names stay few.
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `latchkey_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
}

/**
 * One statement on the pool, prepared once per connection; a database that cannot be
 * reached becomes StoreUnavailableError (503 with Retry-After), anything else stays as it is.
 */
export async function runPrepared<R extends pg.QueryResultRow>(pool: pg.Pool, text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(prepared(text, values));
  } catch (err) {
    return rethrow(err);
  }
}

/**
 * Runs `work` in one transaction on a connection of its own: `begin` (BEGIN, or BEGIN with an
 * isolation level), then COMMIT when `work` returns and ROLLBACK when it throws. A connection
 * that failed is discarded rather than handed back to the pool. Errors pass through as they
 * are: the caller decides whether an unreachable database is a 503 (rethrow) or a CLI message.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failed = err as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release(failed);
  }
}

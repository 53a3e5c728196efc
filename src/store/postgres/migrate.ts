import type pg from 'pg';
import { pino, type Logger } from 'pino';
import { StoreOpenError } from '../types.js';
import { LATEST_VERSION, MIGRATIONS } from './migrations.js';
import { createPool, describeUrl } from './pool.js';

/**
 * Applies the migrations the database lacks, in order, each in its own transaction, under
 * a session advisory lock: instances starting together wait for one another, so each
 * migration runs once. A database at a newer version than this code knows stops here.
 */

/** The advisory lock key of schema migrations (any constant; only Latchkey takes it). */
export const MIGRATION_LOCK = 7_260_513_001;

export interface MigrationResult {
  /** Versions applied now, in order. */
  applied: number[];
  /** The schema version the database is at now. */
  version: number;
}

export async function applyMigrations(pool: pg.Pool, where: string, logger: Logger): Promise<MigrationResult> {
  const client = await pool.connect();
  let failed: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
      const current = rows[0]?.version ?? 0;
      if (current > LATEST_VERSION) {
        throw new StoreOpenError(
          `the database ${where} has schema version ${current}, newer than this Latchkey knows (${LATEST_VERSION}): upgrade Latchkey, or point OAUTH_DATABASE_URL at another database`,
        );
      }
      const applied: number[] = [];
      for (const migration of MIGRATIONS.filter((m) => m.version > current)) {
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        applied.push(migration.version);
        logger.info({ version: migration.version, name: migration.name }, 'applied a database migration');
      }
      return { applied, version: Math.max(current, ...applied) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    }
  } catch (err) {
    failed = err as Error;
    throw err;
  } finally {
    // A connection that failed mid-way is not given back to the pool.
    client.release(failed);
  }
}

/**
 * The schema version the database is at, without changing anything: undefined when Latchkey
 * never migrated it (no schema_migrations table). For `latchkey doctor` and `latchkey export`.
 */
export async function schemaVersion(db: pg.Pool | pg.PoolClient): Promise<number | undefined> {
  const { rows } = await db.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
  if (!rows[0]?.present) return undefined;
  const { rows: versions } = await db.query<{ version: number | null }>('SELECT max(version) AS version FROM schema_migrations');
  return versions[0]?.version ?? 0;
}

/**
 * `latchkey migrate`: brings the database at `url` to this code's schema version, without
 * starting the daemon (the daemon also does it at every start).
 */
export async function migrate(url: string, logger: Logger = pino({ level: 'silent' })): Promise<MigrationResult> {
  const pool = createPool({ url, logger, max: 1 });
  try {
    return await applyMigrations(pool, describeUrl(url), logger);
  } catch (err) {
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(`cannot migrate the database ${describeUrl(url)}: ${(err as Error).message}`);
  } finally {
    await pool.end();
  }
}

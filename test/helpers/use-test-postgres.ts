// Jest-only (it registers hooks): kept apart from postgres.ts, which the bench also imports.
import { startTestPostgres, type TestPostgres, type TestPostgresOptions } from './postgres.js';

/**
 * One PostgreSQL server for the test file: started before its first test, stopped after its
 * last. Returns a getter (the server exists only once `beforeAll` has run).
 */
export function useTestPostgres(options: TestPostgresOptions = {}): () => TestPostgres {
  let db: TestPostgres | undefined;
  beforeAll(async () => {
    db = await startTestPostgres(options);
  }, 180_000);
  afterAll(async () => {
    await db?.close();
  }, 180_000);
  return () => {
    if (db === undefined) throw new Error('the test PostgreSQL is not running (use it inside a test)');
    return db;
  };
}

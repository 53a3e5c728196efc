import { migrate } from '../store/postgres/migrate.js';
import { describeUrl } from '../store/postgres/pool.js';
import { StoreOpenError } from '../store/types.js';
import type { CliIo } from './io.js';

/**
 * `latchkey migrate`: applies the PostgreSQL schema migrations the database at
 * OAUTH_DATABASE_URL lacks, and says at which version it is. The daemon does the same at
 * every start; this runs them on their own (e.g. before rolling out a new version).
 */
export async function migrateCommand(io: CliIo, databaseUrl: string | undefined): Promise<number> {
  if (!databaseUrl) {
    io.err('latchkey migrate: OAUTH_DATABASE_URL is not set; migrations are for the PostgreSQL backend (the JSON files need none)\n');
    return 1;
  }
  try {
    const { applied, version } = await migrate(databaseUrl);
    io.out(
      applied.length > 0
        ? `${describeUrl(databaseUrl)}: applied migration(s) ${applied.join(', ')}; schema version ${version}\n`
        : `${describeUrl(databaseUrl)}: schema up to date at version ${version}\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof StoreOpenError)) throw err;
    io.err(`latchkey migrate: ${err.message}\n`);
    return 1;
  }
}

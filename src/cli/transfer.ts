import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { nodeFsOps, writeFileAtomic } from '../store/file/atomic-file.js';
import { DataDirLockedError, lockDataDir } from '../store/file/data-dir-lock.js';
import { readInstallationFiles, writeInstallationFiles } from '../store/file/installation-files.js';
import { holdsNothing, installationCounts, type Installation, type InstallationCounts } from '../store/installation.js';
import { applyMigrations, schemaVersion } from '../store/postgres/migrate.js';
import { LATEST_VERSION } from '../store/postgres/migrations.js';
import { createPool, describeUrl } from '../store/postgres/pool.js';
import { otherLatchkeySessions, postgresCounts, readPostgresInstallation, writePostgresInstallation } from '../store/postgres/postgres-installation.js';
import { StoreOpenError } from '../store/types.js';
import type { CliIo } from './io.js';

/**
 * `latchkey export DIR` and `latchkey import DIR`: move a whole installation between the JSON
 * files and PostgreSQL, either way. Each command works on the backend its environment
 * selects (OAUTH_DATABASE_URL, else OAUTH_DATA_DIR), so a move is an export with the old
 * settings and an import with the new. Everything travels (records as hashes, key-value
 * entries, the audit log, the signing key): connectors keep their tokens, open consent pages
 * and known browsers stay valid. The export directory is itself a data directory in the file
 * layout (docs/storage.md) with a manifest.
 */

export const EXPORT_MANIFEST = 'latchkey-export.json';
const FORMAT = 'latchkey-export';
const FORMAT_VERSION = 1;

const countsSchema = z.object({ clients: z.number(), codes: z.number(), accessTokens: z.number(), refreshTokens: z.number(), kv: z.number(), audit: z.number() });
const manifestSchema = z.object({
  format: z.literal(FORMAT),
  version: z.number().int(),
  exportedAt: z.string(),
  from: z.enum(['files', 'postgres']),
  counts: countsSchema,
  consentKey: z.boolean(),
});

type Where = { kind: 'files'; dir: string; name: string } | { kind: 'postgres'; url: string; name: string };

/** The backend the configuration selects, named for messages (never the database password). */
function whereOf(io: CliIo, config: Config): Where {
  const url = config.store.databaseUrl;
  if (url !== undefined) return { kind: 'postgres', url, name: `the PostgreSQL database ${describeUrl(url)}` };
  const dir = path.resolve(io.cwd, config.store.dataDir);
  return { kind: 'files', dir, name: dir };
}

function describe(counts: InstallationCounts, key: boolean): string {
  return `${counts.clients} clients, ${counts.accessTokens} access tokens, ${counts.refreshTokens} refresh tokens, ${counts.codes} authorization codes, ${counts.kv} key-value entries, ${counts.audit} audit events${key ? ' and the signing key' : ''}`;
}

/** A one-connection pool for a command (application_name latchkey, like the daemon's). */
const commandPool = (url: string): ReturnType<typeof createPool> => createPool({ url, logger: createLogger('silent'), max: 1 });

async function readSource(where: Where): Promise<Installation | string> {
  if (where.kind === 'files') return (await readInstallationFiles(where.dir)) ?? `no Latchkey data in ${where.dir}; check OAUTH_DATA_DIR`;
  const pool = commandPool(where.url);
  try {
    const version = await schemaVersion(pool);
    if (version === undefined) return `${where.name} holds no Latchkey schema; check OAUTH_DATABASE_URL`;
    if (version > LATEST_VERSION) return `${where.name} has schema version ${version}, newer than this Latchkey knows (${LATEST_VERSION}): export with the newer Latchkey`;
    return await readPostgresInstallation(pool);
  } finally {
    await pool.end();
  }
}

/** `latchkey export DIR`: writes the installation of this configuration's backend into DIR (new or empty). */
export async function exportCommand(io: CliIo, config: Config, targetDir: string): Promise<number> {
  const target = path.resolve(io.cwd, targetDir);
  const existing = await fsp.readdir(target).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  if (existing.length > 0) {
    io.err(`latchkey export: ${target} is not empty; give a new or empty directory\n`);
    return 1;
  }
  const where = whereOf(io, config);
  let data: Installation | string;
  try {
    data = await readSource(where);
  } catch (err) {
    io.err(`latchkey export: cannot read ${where.name}: ${(err as Error).message}\n`);
    return 1;
  }
  if (typeof data === 'string') {
    io.err(`latchkey export: ${data}\n`);
    return 1;
  }
  await writeInstallationFiles(target, data);
  const counts = installationCounts(data);
  const manifest = { format: FORMAT, version: FORMAT_VERSION, exportedAt: new Date().toISOString(), from: where.kind, counts, consentKey: data.consentKey !== undefined };
  await writeFileAtomic(nodeFsOps, path.join(target, EXPORT_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  io.out(`${target}\n`);
  io.err(`latchkey export: ${describe(counts, data.consentKey !== undefined)} from ${where.name}\n`);
  return 0;
}

/** Reads and checks an export directory: its manifest, every file, and that the counts agree. */
async function readExport(dir: string): Promise<Installation | string> {
  let manifest: z.infer<typeof manifestSchema>;
  try {
    const parsed = manifestSchema.safeParse(JSON.parse(await fsp.readFile(path.join(dir, EXPORT_MANIFEST), 'utf8')));
    if (!parsed.success) return `${path.join(dir, EXPORT_MANIFEST)} is not a Latchkey export manifest`;
    manifest = parsed.data;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `${dir} is not a Latchkey export (no ${EXPORT_MANIFEST}); make one with latchkey export` : `cannot read ${EXPORT_MANIFEST}: ${(err as Error).message}`;
  }
  if (manifest.version > FORMAT_VERSION) return `${dir} was exported by a newer Latchkey (format ${manifest.version}); import it with that version`;
  const data = await readInstallationFiles(dir);
  if (!data) return `${dir} does not exist`;
  const counts = installationCounts(data);
  const differs = (Object.keys(counts) as (keyof InstallationCounts)[]).filter((k) => counts[k] !== manifest.counts[k]);
  if (differs.length > 0 || (data.consentKey !== undefined) !== manifest.consentKey) {
    return `${dir} does not hold what its manifest lists (${differs.join(', ') || 'the signing key'}): it was changed or is incomplete; export again`;
  }
  return data;
}

/**
 * `latchkey import DIR`: makes this configuration's backend hold exactly the export in DIR.
 * Refuses a backend that holds anything unless `force` (then it is replaced), and never
 * writes while a daemon uses it: the data directory's lock for the files; for PostgreSQL, no
 * other Latchkey may be connected to the database.
 */
export async function importCommand(io: CliIo, config: Config, sourceDir: string, force: boolean): Promise<number> {
  const source = path.resolve(io.cwd, sourceDir);
  const data = await readExport(source).catch((err: unknown) => (err instanceof StoreOpenError ? err.message : Promise.reject(err)));
  if (typeof data === 'string') {
    io.err(`latchkey import: ${data}\n`);
    return 1;
  }
  const where = whereOf(io, config);
  const refuseNonEmpty = (held: InstallationCounts): boolean => {
    if (force || holdsNothing(held)) return false;
    io.err(`latchkey import: ${where.name} already holds ${describe(held, false)}; nothing was changed. Import into an empty store, or add --force to replace everything in it\n`);
    return true;
  };
  if (where.kind === 'files') {
    let unlock: () => Promise<void>;
    try {
      unlock = await lockDataDir(where.dir);
    } catch (err) {
      if (!(err instanceof DataDirLockedError)) throw err;
      io.err(`latchkey import: ${err.message}; nothing was changed\n`);
      return 1;
    }
    try {
      const held = await readInstallationFiles(where.dir);
      if (held && refuseNonEmpty(installationCounts(held))) return 1;
      await writeInstallationFiles(where.dir, data);
    } catch (err) {
      if (!(err instanceof StoreOpenError)) throw err;
      io.err(`latchkey import: ${err.message}; nothing was changed (add --force to replace it anyway)\n`);
      return 1;
    } finally {
      await unlock();
    }
  } else {
    const pool = commandPool(where.url);
    try {
      await applyMigrations(pool, describeUrl(where.url), createLogger('silent'));
      const others = await otherLatchkeySessions(pool);
      if (others > 0) {
        io.err(`latchkey import: ${others} other Latchkey connection(s) to ${where.name} are open: stop every instance first; nothing was changed\n`);
        return 1;
      }
      if (refuseNonEmpty(await postgresCounts(pool))) return 1;
      await writePostgresInstallation(pool, data);
    } catch (err) {
      io.err(`latchkey import: ${err instanceof StoreOpenError ? err.message : `cannot write ${where.name}: ${(err as Error).message}`}; nothing was changed\n`);
      return 1;
    } finally {
      await pool.end();
    }
  }
  io.err(`latchkey import: ${where.name} now holds ${describe(installationCounts(data), data.consentKey !== undefined)} from ${source}. Start Latchkey on it: connectors keep working as they were.\n`);
  return 0;
}

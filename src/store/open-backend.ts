import type { Logger } from 'pino';
import type { RandomSource } from '../crypto/secrets.js';
import type { FsOps } from './file/atomic-file.js';
import { FileBackend } from './file/file-backend.js';
import { PostgresBackend } from './postgres/postgres-backend.js';
import type { LoadReport } from './types.js';

export interface BackendOptions {
  logger: Logger;
  /** Where a new consent key comes from. */
  random: RandomSource;
  /** The data directory of the file backend. */
  dataDir: string;
  /** Journal size (bytes) that starts a compaction; default 4 MiB. */
  journalCompactBytes?: number;
  /** The file backend's filesystem calls, for fault-injection tests. */
  fs?: FsOps;
  /** A PostgreSQL connection URL (postgres://…): when set, PostgreSQL is used instead of the files. */
  databaseUrl?: string;
  /** PostgreSQL: longest a statement may run, in ms; default 5000. */
  statementTimeoutMs?: number;
  /** PostgreSQL: connections at most; default 10. */
  poolMax?: number;
}

/** A backend of either kind; `kind` tells which. */
export type OpenedBackend = FileBackend | PostgresBackend;

/**
 * Opens the storage backend the options select: PostgreSQL when `databaseUrl` is set
 * (applying its migrations), otherwise the JSON files in `dataDir`. Takes plain values:
 * configuration is read by the caller, never here.
 */
export async function openBackend(options: BackendOptions): Promise<{ backend: OpenedBackend; report: LoadReport }> {
  if (options.databaseUrl !== undefined) {
    return PostgresBackend.open({
      url: options.databaseUrl,
      logger: options.logger,
      random: options.random,
      ...(options.statementTimeoutMs !== undefined ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
      ...(options.poolMax !== undefined ? { poolMax: options.poolMax } : {}),
    });
  }
  return FileBackend.open({
    dataDir: options.dataDir,
    logger: options.logger,
    random: options.random,
    ...(options.journalCompactBytes !== undefined ? { compactAfterBytes: options.journalCompactBytes } : {}),
    ...(options.fs ? { fs: options.fs } : {}),
  });
}

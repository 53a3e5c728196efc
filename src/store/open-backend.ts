import type { Logger } from 'pino';
import type { RandomSource } from '../oauth/secrets.js';
import type { FsOps } from './file/atomic-file.js';
import { FileBackend } from './file/file-backend.js';
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
}

/** A backend of either kind; `kind` tells which. */
export type OpenedBackend = FileBackend;

/**
 * Opens the storage backend the options select: the JSON files in `dataDir` (the default).
 * Takes plain values: configuration is read by the caller, never here.
 */
export async function openBackend(options: BackendOptions): Promise<{ backend: OpenedBackend; report: LoadReport }> {
  return FileBackend.open({
    dataDir: options.dataDir,
    logger: options.logger,
    random: options.random,
    ...(options.journalCompactBytes !== undefined ? { compactAfterBytes: options.journalCompactBytes } : {}),
    ...(options.fs ? { fs: options.fs } : {}),
  });
}

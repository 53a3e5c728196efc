import path from 'node:path';
import type { RandomSource } from '../../crypto/secrets.js';
import type { Backend, LoadReport, StoreHealth } from '../types.js';
import { nodeFsOps } from './atomic-file.js';
import { AUDIT_DIR, FileAuditLog } from './audit-log.js';
import { loadConsentKey } from './consent-key.js';
import { MemoryCounterStore } from './counter-store.js';
import { setAsideFiles } from './data-dir.js';
import { FileStore, type FileStoreOptions } from './file-store.js';
import type { FileKeyValueStore } from './kv-store.js';

export interface FileBackendOptions extends FileStoreOptions {
  /** Where a new consent key comes from. */
  random: RandomSource;
}

/**
 * The default backend: everything in the data directory (docs/storage.md), for one
 * instance. The store and the key-value entries share one journal; counters live in
 * memory; the audit log is a file per day under `audit/`.
 */
export class FileBackend implements Backend {
  readonly kind = 'files' as const;
  readonly kv: FileKeyValueStore;
  readonly counters = new MemoryCounterStore();
  private key: Promise<Buffer> | undefined;

  private constructor(
    readonly store: FileStore,
    readonly audit: FileAuditLog,
    private readonly dataDir: string,
    private readonly random: RandomSource,
  ) {
    this.kv = store.keyValueStore();
  }

  static async open(options: FileBackendOptions): Promise<{ backend: FileBackend; report: LoadReport }> {
    const { store, report } = await FileStore.open(options);
    const dataDir = path.resolve(options.dataDir);
    const audit = new FileAuditLog(path.join(dataDir, AUDIT_DIR), options.fs ?? nodeFsOps, options.logger);
    return { backend: new FileBackend(store, audit, dataDir, options.random), report };
  }

  consentKey(): Promise<Buffer> {
    // Read (or created) once; a failure is not remembered, so the next call tries again.
    this.key ??= loadConsentKey(this.dataDir, this.random).catch((err: unknown) => {
      this.key = undefined;
      throw err;
    });
    return this.key;
  }

  async health(): Promise<StoreHealth> {
    const [health, setAside] = await Promise.all([this.store.health(), setAsideFiles(this.dataDir)]);
    return setAside.length > 0 ? { ...health, setAside } : health;
  }

  async close(): Promise<void> {
    await this.store.close();
    await this.audit.close();
  }
}

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { StoreUnavailableError, type StoreHealth } from '../types.js';
import { writeFileAtomic, type FsOps } from './atomic-file.js';
import { COLLECTIONS, FILES, OPTIONAL_COLLECTIONS, type CollectionName, type FileRecord } from './collections.js';
import { encodeJournalRecord, journalFileName } from './journal.js';
import type { MemoryState, Pending } from './memory-state.js';
import { snapshotChunks } from './snapshot.js';

/**
 * Makes the changes in a {@link MemoryState} durable. Changes are appended, as one line, to
 * the journal and fsync'd; callers are answered only once their change is on disk. Changes
 * that arrive while an append is running share the next one (group commit), so the cost of a
 * change is one small append, whatever the size of the store. If an append fails, every change
 * not yet on disk is undone in memory and its callers get {@link StoreUnavailableError}:
 * nothing is acknowledged that is not on disk.
 *
 * In the background, once the journal has grown enough, it compacts: it writes the durable
 * state into the snapshot files (each replaced atomically and serialized in chunks so the
 * event loop stays free), then deletes the journal files the snapshots now cover.
 */

/**
 * Compact once the journal holds this much, or as much as the snapshots if more: each byte
 * appended then costs about one byte of snapshot rewriting, whatever the size of the store.
 */
export const COMPACT_MIN_BYTES = 4 * 1024 * 1024;
/** After a failed compaction, wait this long before the next try. */
const COMPACT_RETRY_MS = 60_000;

const exists = (file: string): Promise<boolean> =>
  fsp.access(file).then(
    () => true,
    () => false,
  );

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

interface Journal {
  handle: fsp.FileHandle;
  generation: number;
  /** Bytes of whole, durable records: where the next append goes. */
  size: number;
  /** An append failed part-way: cut the file back to `size` before the next one. */
  damaged: boolean;
}

export interface JournalWriterOptions {
  dir: string;
  fs: FsOps;
  logger: Logger;
  state: MemoryState;
  /** Journal size that starts a compaction (bytes). */
  compactAfterBytes: number;
  /** Sequence number of the last durable journal record. */
  seq: number;
  /** Journal files found at startup, still to be folded into the snapshots. */
  olderJournals: { generation: number; bytes: number }[];
  /** Size of the snapshot files found at startup. */
  snapshotBytes: number;
}

export class JournalWriter {
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private lastError: string | undefined;
  private seq: number;
  private journal: Journal | undefined;
  /** Journal files older than the current one, not yet folded into the snapshots. */
  private olderJournals: { generation: number; bytes: number }[];
  /** Size of the snapshot files as last written, to scale the compaction threshold. */
  private snapshotBytes: number;
  private compacting: Promise<void> | undefined;
  private compactionError: string | undefined;
  private compactNotBefore = 0;
  private compactRequested = false;
  /** close() has begun: new changes are refused. */
  private closing = false;
  private closed = false;
  private readonly dir: string;
  private readonly fs: FsOps;
  private readonly logger: Logger;
  private readonly state: MemoryState;
  private readonly compactAfterBytes: number;

  private constructor(options: JournalWriterOptions) {
    this.dir = options.dir;
    this.fs = options.fs;
    this.logger = options.logger;
    this.state = options.state;
    this.compactAfterBytes = options.compactAfterBytes;
    this.seq = options.seq;
    this.olderJournals = [...options.olderJournals];
    this.snapshotBytes = options.snapshotBytes;
  }

  /**
   * Starts appending to a fresh journal file, after the newest one found (an older one may
   * end in a torn record). Throws if the file cannot be created.
   */
  static async start(options: JournalWriterOptions & { lastGeneration: number }): Promise<JournalWriter> {
    const writer = new JournalWriter(options);
    writer.journal = await writer.createJournal(options.lastGeneration + 1);
    return writer;
  }

  /** Resolves once every change made so far is on disk. */
  commit(): Promise<void> {
    if (this.closing) return Promise.reject(new StoreUnavailableError('the store is shutting down'));
    return this.enqueue();
  }

  private enqueue(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      // Never finish synchronously: `flushing` is assigned after this call returns, and a
      // loop that ended before that would leave it pointing at a settled promise for good.
      await null;
      for (;;) {
        if (this.waiters.length > 0) await this.appendBatch();
        // Compaction starts only here, between appends, so its copy of the state is exactly
        // what the journal files it replaces hold.
        else if ((this.compactRequested || this.compactionDue()) && this.canCompact()) {
          this.compactRequested = false;
          await this.beginCompaction();
        } else break;
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async appendBatch(): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    const batch = this.state.takePending();
    const ops = this.state.opsOf(batch);
    try {
      // Nothing to write: done, unless the last append failed. Then an empty record proves
      // the disk takes writes again (health() relies on it).
      if (ops.length > 0 || this.lastError !== undefined) await this.append(encodeJournalRecord({ seq: this.seq + 1, ops }));
      if (this.lastError) this.logger.info('data directory is writable again');
      this.lastError = undefined;
      for (const w of waiters) w.resolve();
    } catch (err) {
      this.failBatch(err as NodeJS.ErrnoException, batch, waiters);
    }
  }

  /** Appends one record at the end of the journal and fsyncs it. */
  private async append(line: string): Promise<void> {
    const journal = this.journal;
    if (!journal) throw new StoreUnavailableError('the store is closed');
    const buf = Buffer.from(line, 'utf8');
    if (journal.damaged) await this.cutOff(journal);
    journal.damaged = true;
    try {
      await this.fs.write(journal.handle, buf, journal.size);
      await this.fs.fsync(journal.handle);
    } catch (err) {
      // The record may be in the file in part or even whole (a failed fsync): cut it off at
      // once, so that nothing refused can be replayed by a restart. If even that fails, the
      // next append tries again first.
      await this.cutOff(journal).catch(() => undefined);
      throw err;
    }
    journal.damaged = false;
    journal.size += buf.length;
    this.seq++;
  }

  /** Cuts the journal back to its last whole, durable record; clears `damaged` once done. */
  private async cutOff(journal: Journal): Promise<void> {
    await this.fs.truncate(journal.handle, journal.size);
    await this.fs.fsync(journal.handle);
    journal.damaged = false;
  }

  /**
   * An append failed. Undo this batch and every change queued behind it (newest first, so
   * each undo restores what was durable), and fail their callers. What the failed append
   * may have left in the journal is cut off before the next one.
   */
  private failBatch(err: NodeJS.ErrnoException, batch: Pending, waiters: Waiter[]): void {
    this.state.revertPending();
    this.state.revert(batch);
    const queued = this.waiters;
    this.waiters = [];
    this.lastError = err.code ?? err.message;
    // `errno`, not `code`: the log redaction censors every `code` key (OAuth codes share the name).
    this.logger.error({ errno: err.code, reason: err.message }, 'could not write the data directory; changes were refused');
    const error = new StoreUnavailableError(this.lastError);
    for (const w of [...waiters, ...queued]) w.reject(error);
  }

  private async createJournal(generation: number): Promise<Journal> {
    const handle = await this.fs.open(path.join(this.dir, journalFileName(generation)), 'wx+', 0o600);
    try {
      // The new file's name must be durable before a record in it is acknowledged.
      await this.fs.fsyncDir(this.dir);
    } catch (err) {
      await handle.close();
      await this.fs.unlink(path.join(this.dir, journalFileName(generation))).catch(() => undefined);
      throw err;
    }
    return { handle, generation, size: 0, damaged: false };
  }

  // ---- compaction ----------------------------------------------------------------------

  private journalBytes(): number {
    return this.olderJournals.reduce((n, j) => n + j.bytes, this.journal?.size ?? 0);
  }

  /**
   * Compaction needs a healthy journal: after a failed append the current file may still end
   * in a refused record (its truncation failed too), and switching files would keep it.
   */
  private canCompact(): boolean {
    return !this.closed && this.compacting === undefined && this.lastError === undefined && this.journal !== undefined && !this.journal.damaged;
  }

  private compactionDue(): boolean {
    return Date.now() >= this.compactNotBefore && this.journalBytes() >= Math.max(this.compactAfterBytes, this.snapshotBytes);
  }

  /** Asks the flush loop to compact at its next pause between appends. */
  requestCompaction(): void {
    this.compactRequested = true;
    this.flushing ??= this.flushLoop();
  }

  /**
   * Called between appends. Takes the durable state (memory minus the changes not yet
   * appended), switches appends to a new journal file, and writes the snapshots in the
   * background. Only after every snapshot is in place are the older journal files deleted.
   */
  private async beginCompaction(): Promise<void> {
    const current = this.journal;
    if (!current || this.closed) return;
    const seq = this.seq;
    const records = this.state.durableRecords();
    let next: Journal;
    try {
      next = await this.createJournal(current.generation + 1);
    } catch (err) {
      this.compactionFailed(err as Error);
      return;
    }
    this.journal = next;
    this.olderJournals.push({ generation: current.generation, bytes: current.size });
    await current.handle.close().catch(() => undefined);
    this.compacting = this.writeSnapshots(seq, records).finally(() => {
      this.compacting = undefined;
    });
  }

  private async writeSnapshots(seq: number, records: Record<CollectionName, FileRecord[]>): Promise<void> {
    const started = Date.now();
    const covered = [...this.olderJournals];
    try {
      let bytes = 0;
      for (const name of COLLECTIONS) {
        const file = path.join(this.dir, FILES[name]);
        // An optional collection's file appears only once it holds something (its absence
        // reads as empty), so data directories that never use it look as they always did.
        if (OPTIONAL_COLLECTIONS.has(name) && records[name].length === 0 && !(await exists(file))) continue;
        await writeFileAtomic(this.fs, file, snapshotChunks(seq, records[name]));
        bytes += (await fsp.stat(file)).size;
      }
      for (const j of covered) {
        await this.fs.unlink(path.join(this.dir, journalFileName(j.generation))).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'ENOENT') throw err;
        });
      }
      await this.fs.fsyncDir(this.dir);
      this.olderJournals = this.olderJournals.filter((j) => !covered.includes(j));
      this.snapshotBytes = bytes;
      if (this.compactionError) this.logger.info('compaction works again');
      this.compactionError = undefined;
      this.logger.info({ seq, bytes, ms: Date.now() - started, journalFiles: covered.length }, 'compacted the journal into the snapshot files');
    } catch (err) {
      this.compactionFailed(err as NodeJS.ErrnoException);
    }
  }

  private compactionFailed(err: NodeJS.ErrnoException): void {
    // Nothing is lost: the journal still holds every change. Try again later.
    this.compactionError = err.code ?? err.message;
    this.compactNotBefore = Date.now() + COMPACT_RETRY_MS;
    this.logger.warn({ errno: err.code, reason: err.message }, 'could not compact the journal into the snapshot files; the journal keeps every change, will retry');
  }

  /**
   * Folds the whole journal into the snapshot files now and waits for it: for tests, and
   * for a clean shutdown that leaves only readable snapshots behind.
   */
  async compact(): Promise<void> {
    await this.compacting;
    if (this.journalBytes() === 0 || !this.canCompact()) return;
    this.requestCompaction();
    while (this.flushing) await this.flushing;
    await this.compacting;
  }

  async health(): Promise<StoreHealth> {
    // After a failed append, try again now: a fault that has cleared (disk space freed,
    // permissions fixed) heals the store without waiting for the next request.
    if (this.lastError !== undefined) await this.commit().catch(() => undefined);
    if (this.lastError !== undefined) return { ok: false, error: this.lastError };
    return this.compactionError === undefined ? { ok: true } : { ok: true, compactionError: this.compactionError };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    // From now on new changes are refused; the ones made so far are written.
    this.closing = true;
    if (this.state.hasPending()) await this.enqueue().catch(() => undefined);
    while (this.flushing) await this.flushing;
    // Leave readable snapshots and no journal behind after a clean stop.
    await this.compact();
    this.closed = true;
    const journal = this.journal;
    this.journal = undefined;
    if (journal) {
      // A last failed append may have left a refused record: one more try to cut it off.
      if (journal.damaged) await this.cutOff(journal).catch(() => undefined);
      await journal.handle.close().catch(() => undefined);
      if (journal.size === 0) await this.fs.unlink(path.join(this.dir, journalFileName(journal.generation))).catch(() => undefined);
    }
  }
}

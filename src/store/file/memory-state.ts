import { collectionMaps, COLLECTIONS, type CollectionName, type CollectionRecords, type FileRecord } from './collections.js';
import type { JournalOp } from './journal.js';

/** Per collection: key → its durable value before the first change not yet on disk. */
export type Pending = Record<CollectionName, Map<string, FileRecord | undefined>>;

const noPending = (): Pending => collectionMaps<FileRecord | undefined>();
const pendingSize = (p: Pending): number => COLLECTIONS.reduce((n, name) => n + p[name].size, 0);

/** Called for every change in memory, including undos: keeps indexes in step. */
export type ChangeListener = (name: CollectionName, key: string, before: FileRecord | undefined, after: FileRecord | undefined) => void;

type Maps = { [K in CollectionName]: Map<string, CollectionRecords[K]> };

/**
 * Every record of the file backend, in memory, and the changes not yet on disk. A change is
 * applied here in one synchronous step (so check-and-set operations are atomic on Node's
 * single thread), remembering the value it replaced; the journal writer then takes the
 * pending changes as one batch, and undoes them here if the batch cannot be made durable.
 */
export class MemoryState {
  private pending: Pending = noPending();

  constructor(
    readonly maps: Maps,
    private readonly onChange: ChangeListener,
  ) {}

  private mapOf(name: CollectionName): Map<string, FileRecord> {
    return this.maps[name] as Map<string, FileRecord>;
  }

  /** Applies a change in memory, remembering the value to restore if the append fails. */
  set<K extends CollectionName>(name: K, key: string, value: CollectionRecords[K] | undefined): void {
    const map = this.mapOf(name);
    const previous = map.get(key);
    const pending = this.pending[name];
    if (!pending.has(key)) pending.set(key, previous);
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    this.onChange(name, key, previous, value);
  }

  hasPending(): boolean {
    return pendingSize(this.pending) > 0;
  }

  /** Hands over the changes made so far (to be appended as one batch) and starts a new set. */
  takePending(): Pending {
    const batch = this.pending;
    this.pending = noPending();
    return batch;
  }

  /** The journal ops of a batch: each changed key with its current whole record, or null if deleted. */
  opsOf(batch: Pending): JournalOp[] {
    const ops: JournalOp[] = [];
    for (const name of COLLECTIONS) for (const key of batch[name].keys()) ops.push([name, key, this.mapOf(name).get(key) ?? null]);
    return ops;
  }

  /** Puts back the values `changes` replaced. */
  revert(changes: Pending): void {
    for (const name of COLLECTIONS) {
      const map = this.mapOf(name);
      for (const [key, previous] of changes[name]) {
        const current = map.get(key);
        if (previous === undefined) map.delete(key);
        else map.set(key, previous);
        this.onChange(name, key, current, previous);
      }
    }
  }

  /** Undoes the changes not yet taken (newest first: call before reverting older batches). */
  revertPending(): void {
    this.revert(this.takePending());
  }

  /** Every collection as it is on disk: memory minus the changes not yet taken. */
  durableRecords(): Record<CollectionName, FileRecord[]> {
    const records = {} as Record<CollectionName, FileRecord[]>;
    for (const name of COLLECTIONS) {
      const pending = this.pending[name];
      if (pending.size === 0) records[name] = [...this.mapOf(name).values()];
      else {
        const copy = new Map(this.mapOf(name));
        for (const [key, durable] of pending) {
          if (durable === undefined) copy.delete(key);
          else copy.set(key, durable);
        }
        records[name] = [...copy.values()];
      }
    }
    return records;
  }
}

import type { KvEntry } from '../records.js';
import type { KeyValueStore } from '../types.js';
import { kvKey } from './collections.js';
import type { MemoryState } from './memory-state.js';

const live = (entry: KvEntry | undefined, now: number): entry is KvEntry => entry !== undefined && (entry.expiresAt === null || entry.expiresAt > now);

/**
 * The key-value store of the file backend: the `kv` collection of the same in-memory state
 * and journal as the {@link FileStore}, so its changes are group-committed with the others and
 * compacted into `kv.json`. Each check-and-set (putIfAbsent, take) is one synchronous step in
 * memory, hence atomic; it resolves once durable.
 */
export class FileKeyValueStore implements KeyValueStore {
  constructor(
    private readonly state: MemoryState,
    private readonly commit: () => Promise<void>,
  ) {}

  private entry(namespace: string, key: string): KvEntry | undefined {
    return this.state.maps.kv.get(kvKey(namespace, key));
  }

  async putIfAbsent(namespace: string, key: string, value: string, expiresAt: number | null, now: number): Promise<boolean> {
    if (live(this.entry(namespace, key), now)) return false;
    await this.put(namespace, key, value, expiresAt);
    return true;
  }

  async put(namespace: string, key: string, value: string, expiresAt: number | null): Promise<void> {
    this.state.set('kv', kvKey(namespace, key), { namespace, key, value, expiresAt });
    await this.commit();
  }

  async get(namespace: string, key: string, now: number): Promise<string | undefined> {
    const entry = this.entry(namespace, key);
    return live(entry, now) ? entry.value : undefined;
  }

  async take(namespace: string, key: string, now: number): Promise<string | undefined> {
    const entry = this.entry(namespace, key);
    if (!live(entry, now)) return undefined;
    this.state.set('kv', kvKey(namespace, key), undefined);
    await this.commit();
    return entry.value;
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    if (this.entry(namespace, key) === undefined) return false;
    this.state.set('kv', kvKey(namespace, key), undefined);
    await this.commit();
    return true;
  }

  async list(namespace: string, now: number): Promise<{ key: string; value: string; expiresAt: number | null }[]> {
    const entries: { key: string; value: string; expiresAt: number | null }[] = [];
    for (const entry of this.state.maps.kv.values()) {
      if (entry.namespace === namespace && live(entry, now)) entries.push({ key: entry.key, value: entry.value, expiresAt: entry.expiresAt });
    }
    return entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  StoreOpenError,
  type AccessTokenRecord,
  type ClientRecord,
  type CodeRecord,
  type ClientQuery,
  type ExpiredCounts,
  type GrantQuery,
  type GrantSummary,
  type KvEntry,
  type LoadReport,
  type RefreshTokenRecord,
  type Store,
  type StoreCounts,
  type StoreHealth,
} from '../types.js';
import { summarizeGrants } from '../grant-summaries.js';
import { nodeFsOps, writeFileAtomic, type FsOps } from './atomic-file.js';
import { COLLECTIONS, FILES, type CollectionName, type FileRecord } from './collections.js';
import { prepareDataDir, readDataDir, removeStaleTempFiles, type DataDirState } from './data-dir.js';
import { COMPACT_MIN_BYTES, JournalWriter } from './journal-writer.js';
import { FileKeyValueStore } from './kv-store.js';
import { MemoryState } from './memory-state.js';
import { serializeSnapshot } from './snapshot.js';

/**
 * The JSON-file store: the {@link Store} methods over records held in memory, and the grant
 * index. Every change is applied in memory in one synchronous step (a {@link MemoryState}),
 * so check-and-set operations are atomic on Node's single thread, and resolves once the
 * {@link JournalWriter} has made it durable. The key-value entries (the `kv` collection)
 * share that memory and journal. Startup reads the snapshots and replays the journal after
 * them ({@link readDataDir}). The layout is described in docs/storage.md.
 */

export interface FileStoreOptions {
  dataDir: string;
  logger: Logger;
  fs?: FsOps;
  /** Journal size that starts a compaction (bytes); tests make it small. */
  compactAfterBytes?: number;
}

/** One-character collection tags of the grant index entries. */
const TAG: Record<CollectionName, string> = { clients: 'l', codes: 'c', accessTokens: 'a', refreshTokens: 'r', kv: 'k' };
/** The collection of a tag: TAG read backwards. */
const UNTAG: Record<string, CollectionName> = Object.fromEntries(Object.entries(TAG).map(([name, tag]) => [tag, name as CollectionName]));
/** See ClientQuery.unapprovedOnly. */
const neverApproved = (client: ClientRecord): boolean => client.approvedAt === undefined && client.lastUsedAt === undefined;

/** The collections whose records belong to a grant. */
const GRANT_COLLECTIONS = ['codes', 'accessTokens', 'refreshTokens'] as const;

export class FileStore implements Store {
  /**
   * grantId → keys of its codes and tokens, per collection, so revoking a grant touches only
   * its own records instead of scanning every token. Kept in step by every change in memory.
   */
  private readonly byGrant = new Map<string, string[]>();
  private readonly state: MemoryState;
  private writer!: JournalWriter;

  private constructor(
    private readonly dir: string,
    private readonly fs: FsOps,
    private readonly logger: Logger,
    private readonly compactAfterBytes: number,
  ) {
    this.state = new MemoryState(
      { clients: new Map(), codes: new Map(), accessTokens: new Map(), refreshTokens: new Map(), kv: new Map() },
      (name, key, before, after) => this.index(name, key, before, after),
    );
  }

  private get data(): MemoryState['maps'] {
    return this.state.maps;
  }

  static async open(options: FileStoreOptions): Promise<{ store: FileStore; report: LoadReport }> {
    const store = new FileStore(path.resolve(options.dataDir), options.fs ?? nodeFsOps, options.logger, options.compactAfterBytes ?? COMPACT_MIN_BYTES);
    const report = await store.load();
    return { store, report };
  }

  // ---- loading -------------------------------------------------------------------------

  private async load(): Promise<LoadReport> {
    await prepareDataDir(this.dir);
    await removeStaleTempFiles(this.dir, this.logger);
    let state: DataDirState;
    try {
      state = await readDataDir(this.dir);
    } catch (err) {
      throw new StoreOpenError(`${(err as Error).message}. Check that the user running Latchkey owns ${this.dir}.`);
    }
    const setAside: LoadReport['setAside'] = [];
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    let snapshotBytes = 0;
    let rejectedRecords = false;
    for (const name of COLLECTIONS) {
      const file = path.join(this.dir, FILES[name]);
      const snapshot = state.snapshots[name];
      if (snapshot.status === 'ok') {
        snapshotBytes += snapshot.bytes;
        if (snapshot.cutShort) {
          // The records before the cut loaded; a byte-for-byte copy keeps what the file was, and
          // keeps /healthz, /admin and doctor saying so until the owner has looked.
          const copy = `${file}.corrupt-${stamp}`;
          await fsp.copyFile(file, copy);
          this.logger.error({ file, copy }, `${FILES[name]} ends before its closing line (cut short): loaded the records before the cut; restore the rest from a backup`);
          setAside.push({ file, movedTo: copy, reason: 'the file was cut short; the records before the cut loaded' });
          rejectedRecords = true;
        }
        if (snapshot.rejected) {
          // Never lose what we cannot read, never let it stop the rest: the unreadable records go,
          // byte for byte, to a file of their own (one JSON text a line), and the next compaction
          // writes the snapshot without them.
          const keptAt = `${file}.rejected-${stamp}.jsonl`;
          await writeFileAtomic(this.fs, keptAt, snapshot.rejected.map((r) => `${r.text}\n`).join(''));
          const lines = snapshot.rejected.map((r) => ({ line: r.line, reason: r.reason }));
          this.logger.error({ file, keptAt, lines }, `${snapshot.rejected.length} record(s) of ${FILES[name]} could not be read: kept them aside, loaded the rest`);
          setAside.push({ file, movedTo: keptAt, reason: `${snapshot.rejected.length} unreadable record(s) at line ${lines.map((l) => l.line).join(', ')}` });
          rejectedRecords = true;
        }
        continue;
      }
      if (snapshot.status === 'missing') {
        await writeFileAtomic(this.fs, file, serializeSnapshot(0, [])); // created empty at first start
        continue;
      }
      if (snapshot.newer) {
        throw new StoreOpenError(`${file} was written by a newer Latchkey (${snapshot.reason}); upgrade Latchkey to read it.`);
      }
      // Never overwrite what we cannot read: move it aside byte for byte, start that
      // collection from the journal alone (usually empty).
      const movedTo = `${file}.corrupt-${stamp}`;
      await fsp.rename(file, movedTo);
      this.logger.error({ file, movedTo, reason: snapshot.reason }, 'data file is corrupt; moved it aside and started that collection from the journal alone');
      setAside.push({ file, movedTo, reason: snapshot.reason });
      await writeFileAtomic(this.fs, file, serializeSnapshot(0, []));
    }

    const journal: LoadReport['journal'] = { files: state.journals.length, records: state.replayed, tornRecords: 0, corruptRecords: 0 };
    const olderJournals: { generation: number; bytes: number }[] = [];
    for (const j of state.journals) {
      const file = path.join(this.dir, j.file);
      if (j.torn) {
        journal.tornRecords++;
        this.logger.warn({ file, line: j.torn.line, bytes: j.torn.bytes }, 'dropped the last journal record: a crash cut it short before it was acknowledged');
      }
      if (j.corrupt.length > 0) {
        journal.corruptRecords += j.corrupt.length;
        const copy = `${file}.corrupt-${stamp}`;
        await fsp.copyFile(file, copy);
        this.logger.error({ file, copy, lines: j.corrupt }, 'journal records are damaged and were skipped; kept a copy of the file');
      }
      if (j.bytes === 0) await this.fs.unlink(file).catch(() => undefined); // nothing in it to keep
      else olderJournals.push({ generation: j.generation, bytes: j.bytes });
    }
    if (state.replayed > 0) this.logger.info({ records: state.replayed, files: state.journals.length }, 'replayed the journal after the snapshots');

    // The maps read are the store's maps from now on (no copy of a large store).
    const maps = this.state.maps;
    maps.clients = state.collections.clients as Map<string, ClientRecord>;
    maps.codes = state.collections.codes as Map<string, CodeRecord>;
    maps.accessTokens = state.collections.accessTokens as Map<string, AccessTokenRecord>;
    maps.refreshTokens = state.collections.refreshTokens as Map<string, RefreshTokenRecord>;
    maps.kv = state.collections.kv as Map<string, KvEntry>;
    for (const name of COLLECTIONS) for (const [key, record] of state.collections[name]) this.index(name, key, undefined, record);
    try {
      // Always a fresh journal file: an older one may end in a torn record.
      this.writer = await JournalWriter.start({
        dir: this.dir,
        fs: this.fs,
        logger: this.logger,
        state: this.state,
        compactAfterBytes: this.compactAfterBytes,
        seq: state.seq,
        olderJournals,
        snapshotBytes,
        lastGeneration: state.journals.at(-1)?.generation ?? 0,
      });
    } catch (err) {
      throw new StoreOpenError(`cannot create a journal file in ${this.dir}: ${(err as Error).message}. Check that the user running Latchkey owns ${this.dir} and that the disk has space.`);
    }
    // Fold what the journal held into the snapshots, in the background; also when a snapshot
    // was just created or set aside while the others are further on (not one point in time:
    // backups would keep waiting for the snapshots to agree).
    if (olderJournals.length > 0 || !state.consistent || rejectedRecords) this.writer.requestCompaction();
    return { counts: await this.counts(Date.now()), setAside, journal };
  }

  // ---- the grant index -------------------------------------------------------------------

  /** Moves `key` in the grant index from the grant of `before` to the grant of `after`. */
  private index(name: CollectionName, key: string, before: FileRecord | undefined, after: FileRecord | undefined): void {
    if (name === 'clients' || name === 'kv') return;
    const grantOf = (r: FileRecord | undefined): string | undefined => (r as CodeRecord | undefined)?.grantId;
    const from = grantOf(before);
    const to = grantOf(after);
    if (from === to) return;
    // One small array per grant (a grant holds a handful of records): far lighter than a Set.
    const entry = `${TAG[name]}${key}`;
    if (from !== undefined) {
      const keys = this.byGrant.get(from);
      const at = keys?.indexOf(entry) ?? -1;
      if (keys && at !== -1) {
        keys.splice(at, 1);
        if (keys.length === 0) this.byGrant.delete(from);
      }
    }
    if (to !== undefined) {
      const keys = this.byGrant.get(to);
      if (keys) keys.push(entry);
      else this.byGrant.set(to, [entry]);
    }
  }

  private commit(): Promise<void> {
    return this.writer.commit();
  }

  /**
   * Folds the whole journal into the snapshot files now and waits for it: for tests, and
   * for a clean shutdown that leaves only readable snapshots behind.
   */
  compact(): Promise<void> {
    return this.writer.compact();
  }

  /** The key-value store kept in this store's journal and snapshots (the `kv` collection). */
  keyValueStore(): FileKeyValueStore {
    return new FileKeyValueStore(this.state, () => this.commit());
  }

  // ---- clients -------------------------------------------------------------------------

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.data.clients.get(clientId);
  }

  async putClient(client: ClientRecord): Promise<void> {
    this.state.set('clients', client.clientId, client);
    await this.commit();
  }

  touchClient(clientId: string, at: number): void {
    const client = this.data.clients.get(clientId);
    // At most one rewrite a minute per client: this is for the owner's overview, not security.
    if (!client || (client.lastUsedAt !== undefined && at - client.lastUsedAt < 60_000)) return;
    // Goes to disk with the next change that is waited for; losing it in a crash costs nothing.
    this.state.set('clients', clientId, { ...client, lastUsedAt: at });
  }

  async markClientApproved(clientId: string, at: number): Promise<void> {
    const client = this.data.clients.get(clientId);
    if (client && client.approvedAt === undefined) this.state.set('clients', clientId, { ...client, approvedAt: at });
    // Also when it was set already: that change may still be on its way to disk.
    await this.commit();
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return (await this.deleteClients([clientId])) > 0;
  }

  async deleteClients(clientIds: readonly string[]): Promise<number> {
    const gone = new Set(clientIds.filter((id) => this.data.clients.has(id)));
    if (gone.size === 0) return 0;
    for (const clientId of gone) this.state.set('clients', clientId, undefined);
    for (const name of GRANT_COLLECTIONS) {
      for (const [key, record] of this.data[name]) if (gone.has(record.clientId)) this.state.set(name, key, undefined);
    }
    await this.commit();
    return gone.size;
  }

  async deleteUnusedClients(registeredBefore: number): Promise<number> {
    // Clients registered before `approvedAt` existed have none even when approved: having
    // been used at /token, or holding a code or a token, shows they were.
    const holding = new Set<string>();
    for (const name of GRANT_COLLECTIONS) for (const record of this.data[name].values()) holding.add(record.clientId);
    const unused: string[] = [];
    for (const client of this.data.clients.values()) {
      if (client.approvedAt === undefined && client.lastUsedAt === undefined && client.issuedAt < registeredBefore && !holding.has(client.clientId)) {
        unused.push(client.clientId);
      }
    }
    return this.deleteClients(unused);
  }

  async clientCount(query: Pick<ClientQuery, 'unapprovedOnly'> = {}): Promise<number> {
    if (!query.unapprovedOnly) return this.data.clients.size;
    let n = 0;
    for (const client of this.data.clients.values()) if (neverApproved(client)) n++;
    return n;
  }

  async listClients(query: ClientQuery = {}): Promise<ClientRecord[]> {
    let clients = [...this.data.clients.values()];
    if (query.unapprovedOnly) clients = clients.filter(neverApproved);
    // A stable sort: clients registered in the same millisecond keep the order they were stored in.
    clients.sort((a, b) => a.issuedAt - b.issuedAt);
    if (query.newestFirst) clients.reverse();
    const offset = query.offset ?? 0;
    return clients.slice(offset, query.limit === undefined ? undefined : offset + query.limit);
  }

  // ---- codes ---------------------------------------------------------------------------

  async putCode(code: CodeRecord): Promise<void> {
    this.state.set('codes', code.hash, code);
    await this.commit();
  }

  async getCode(hash: string, now: number): Promise<CodeRecord | undefined> {
    const code = this.data.codes.get(hash);
    return code && code.expiresAt > now ? code : undefined;
  }

  async consumeCode(
    hash: string,
    now: number,
    issued: { access: AccessTokenRecord; refresh: RefreshTokenRecord | undefined },
  ): Promise<CodeRecord | undefined> {
    const code = this.data.codes.get(hash);
    if (!code || code.expiresAt <= now) return undefined;
    if (code.consumedAt !== undefined) return code;
    this.state.set('codes', hash, { ...code, consumedAt: now });
    this.state.set('accessTokens', issued.access.hash, issued.access);
    if (issued.refresh) this.state.set('refreshTokens', issued.refresh.hash, issued.refresh);
    await this.commit();
    return code;
  }

  // ---- tokens --------------------------------------------------------------------------

  async putTokens(access: AccessTokenRecord, refresh: RefreshTokenRecord | undefined): Promise<void> {
    this.state.set('accessTokens', access.hash, access);
    if (refresh) this.state.set('refreshTokens', refresh.hash, refresh);
    await this.commit();
  }

  async getAccessToken(hash: string, now: number): Promise<AccessTokenRecord | undefined> {
    const token = this.data.accessTokens.get(hash);
    return token && token.expiresAt > now ? token : undefined;
  }

  async getRefreshToken(hash: string, now: number): Promise<RefreshTokenRecord | undefined> {
    const token = this.data.refreshTokens.get(hash);
    return token && token.expiresAt > now ? token : undefined;
  }

  async rotateRefreshToken(
    hash: string,
    now: number,
    retainUntil: number,
    successors: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
  ): Promise<RefreshTokenRecord | undefined> {
    const token = this.data.refreshTokens.get(hash);
    if (!token || token.expiresAt <= now) return undefined;
    if (token.rotatedAt !== undefined) return token;
    this.state.set('refreshTokens', hash, { ...token, rotatedAt: now, expiresAt: Math.min(token.expiresAt, retainUntil) });
    this.state.set('accessTokens', successors.access.hash, successors.access);
    this.state.set('refreshTokens', successors.refresh.hash, successors.refresh);
    await this.commit();
    return token;
  }

  async deleteAccessToken(hash: string): Promise<boolean> {
    if (!this.data.accessTokens.has(hash)) return false;
    this.state.set('accessTokens', hash, undefined);
    await this.commit();
    return true;
  }

  async revokeGrant(grantId: string): Promise<number> {
    const entries = [...(this.byGrant.get(grantId) ?? [])];
    for (const entry of entries) {
      const collection = UNTAG[entry.charAt(0)];
      // The index only ever holds the tags it was given; anything else is a bug, not a code.
      if (collection === undefined) throw new Error(`grant index entry with an unknown tag: ${entry.charAt(0)}`);
      this.state.set(collection, entry.slice(1), undefined);
    }
    if (entries.length > 0) await this.commit();
    return entries.length;
  }

  async revokeGrantsBySubject(subject: string): Promise<number> {
    let removed = 0;
    for (const name of GRANT_COLLECTIONS) {
      for (const [key, record] of this.data[name]) {
        if (record.approvedBy?.subject === subject) {
          this.state.set(name, key, undefined);
          removed++;
        }
      }
    }
    if (removed > 0) await this.commit();
    return removed;
  }

  async listGrants(now: number, query: GrantQuery = {}): Promise<GrantSummary[]> {
    const wanted = (token: AccessTokenRecord | RefreshTokenRecord): boolean =>
      token.expiresAt > now && (query.clientId === undefined || token.clientId === query.clientId) && (query.subject === undefined || token.approvedBy?.subject === query.subject);
    const { refreshTokens, accessTokens } = this.data;
    return summarizeGrants(
      (function* () {
        for (const t of refreshTokens.values()) if (t.rotatedAt === undefined && wanted(t)) yield { ...t, access: false };
        for (const t of accessTokens.values()) if (wanted(t)) yield { ...t, access: true };
      })(),
    );
  }

  // ---- housekeeping --------------------------------------------------------------------

  async deleteExpired(now: number): Promise<ExpiredCounts> {
    const counts: ExpiredCounts = { codes: 0, accessTokens: 0, refreshTokens: 0 };
    for (const name of GRANT_COLLECTIONS) {
      for (const [key, record] of this.data[name]) {
        if (record.expiresAt <= now) {
          this.state.set(name, key, undefined);
          counts[name]++;
        }
      }
    }
    // Expired key-value entries go too; they are not counted, being nobody's codes or tokens.
    let entries = 0;
    for (const [key, entry] of this.data.kv) {
      if (entry.expiresAt !== null && entry.expiresAt <= now) {
        this.state.set('kv', key, undefined);
        entries++;
      }
    }
    if (counts.codes + counts.accessTokens + counts.refreshTokens + entries > 0) await this.commit();
    return counts;
  }

  async counts(now: number): Promise<StoreCounts> {
    const live = (map: Map<string, { expiresAt: number }>): number => {
      let n = 0;
      for (const r of map.values()) if (r.expiresAt > now) n++;
      return n;
    };
    let refresh = 0;
    for (const r of this.data.refreshTokens.values()) if (r.expiresAt > now && r.rotatedAt === undefined) refresh++;
    let codes = 0;
    for (const r of this.data.codes.values()) if (r.expiresAt > now && r.consumedAt === undefined) codes++;
    return {
      clients: this.data.clients.size,
      codes,
      accessTokens: live(this.data.accessTokens),
      refreshTokens: refresh,
    };
  }

  health(): Promise<StoreHealth> {
    return this.writer.health();
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}

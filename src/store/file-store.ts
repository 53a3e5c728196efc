import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { nodeFsOps, writeFileAtomic, type FsOps } from './atomic-file.js';
import { encodeJournalRecord, JOURNAL_PATTERN, journalFileName, parseJournal, type JournalOp } from './journal.js';
import {
  CLIENT_AUTH_METHODS,
  StoreUnavailableError,
  type AccessTokenRecord,
  type ClientRecord,
  type CodeRecord,
  type ExpiredCounts,
  type GrantSummary,
  type RefreshTokenRecord,
  type Store,
  type StoreCounts,
  type StoreHealth,
} from './types.js';

/**
 * The JSON-file store. All records live in memory; every change is applied in memory in one
 * synchronous step (so check-and-set operations are atomic on Node's single thread). The
 * changes are then appended, as one line, to the journal and fsync'd; callers are answered
 * only once their change is on disk. Changes that arrive while an append is running share
 * the next one (group commit), so the cost of a change is one small append, whatever the
 * size of the store. If an append fails, every change not yet on disk is undone in memory
 * and its callers get {@link StoreUnavailableError}: nothing is acknowledged that is not on
 * disk.
 *
 * In the background, once the journal has grown enough, the store compacts: it writes the
 * durable state into the snapshot files (clients.json, codes.json, tokens.json,
 * refresh_tokens.json, each replaced atomically and serialized in chunks so the event loop
 * stays free), then deletes the journal files the snapshots now cover. Startup loads the
 * snapshots and replays the journal after them. The layout is described in docs/storage.md.
 */

/** The snapshot format written now: `{"version":2,"seq":n,"records":[...]}`. */
export const SCHEMA_VERSION = 2;
/** Version 1 files (no journal, no `seq`) are read as snapshots at sequence 0. */
const OLDEST_READABLE_VERSION = 1;

/** The file of each collection, relative to the data directory. */
export const FILES = {
  clients: 'clients.json',
  codes: 'codes.json',
  accessTokens: 'tokens.json',
  refreshTokens: 'refresh_tokens.json',
} as const;

export type CollectionName = keyof typeof FILES;
const COLLECTIONS = Object.keys(FILES) as CollectionName[];
const isCollection = (name: string): name is CollectionName => Object.hasOwn(FILES, name);

/**
 * Compact once the journal holds this much, or as much as the snapshots if more: each byte
 * appended then costs about one byte of snapshot rewriting, whatever the size of the store.
 */
const COMPACT_MIN_BYTES = 4 * 1024 * 1024;
/** After a failed compaction, wait this long before the next try. */
const COMPACT_RETRY_MS = 60_000;
/** Records per chunk when serializing a snapshot: small enough to keep each step short. */
const SNAPSHOT_CHUNK = 1_000;

const str = z.string();
const num = z.number();
const authMethod = z.enum(CLIENT_AUTH_METHODS);

const clientSchema = z.object({
  clientId: str,
  clientSecretHash: str.optional(),
  issuedAt: num,
  lastUsedAt: num.optional(),
  metadata: z.looseObject({
    redirect_uris: z.array(str),
    token_endpoint_auth_method: authMethod,
    grant_types: z.array(str),
    response_types: z.array(str),
  }),
});

const codeSchema = z.object({
  hash: str,
  clientId: str,
  grantId: str,
  redirectUri: str,
  codeChallenge: str,
  scopes: z.array(str),
  resource: str,
  issuedAt: num,
  expiresAt: num,
  consumedAt: num.optional(),
});

const accessSchema = z.object({
  hash: str,
  clientId: str,
  grantId: str,
  scopes: z.array(str),
  resource: str,
  issuedAt: num,
  expiresAt: num,
});

const refreshSchema = accessSchema.extend({ rotatedAt: num.optional() });

const SCHEMAS: Record<CollectionName, z.ZodType> = {
  clients: clientSchema,
  codes: codeSchema,
  accessTokens: accessSchema,
  refreshTokens: refreshSchema,
};

interface Collections {
  clients: Map<string, ClientRecord>;
  codes: Map<string, CodeRecord>;
  accessTokens: Map<string, AccessTokenRecord>;
  refreshTokens: Map<string, RefreshTokenRecord>;
}

type Record_ = ClientRecord | CodeRecord | AccessTokenRecord | RefreshTokenRecord;

/** Per collection: key → its durable value before the first change not yet on disk. */
type Pending = Record<CollectionName, Map<string, Record_ | undefined>>;
const collectionMaps = <V>(): Record<CollectionName, Map<string, V>> => ({ clients: new Map(), codes: new Map(), accessTokens: new Map(), refreshTokens: new Map() });
const noPending = (): Pending => collectionMaps<Record_ | undefined>();
const pendingSize = (p: Pending): number => COLLECTIONS.reduce((n, name) => n + p[name].size, 0);

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface FileStoreOptions {
  dataDir: string;
  logger: Logger;
  fs?: FsOps;
  /** Journal size that starts a compaction (bytes); tests make it small. */
  compactAfterBytes?: number;
}

export interface LoadReport {
  counts: StoreCounts;
  /** Files that could not be parsed and were moved aside, with where they went. */
  setAside: { file: string; movedTo: string; reason: string }[];
  /** What the journal added to the snapshots, and what of it had to be dropped. */
  journal: { files: number; records: number; tornRecords: number; corruptRecords: number };
}

/** Startup cannot go on: the message says which file and what to do. */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}

/**
 * Reads one snapshot file: its envelope, schema version, sequence number and every record.
 * Shared with `latchkey doctor` and `latchkey backup`, so they judge a file exactly as the
 * daemon does.
 */
export function parseDataFile(
  name: CollectionName,
  text: string,
): { ok: true; records: Record_[]; seq: number } | { ok: false; reason: string; newer: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not valid JSON (${(err as Error).message})`, newer: false };
  }
  const envelope = z.object({ version: z.number(), seq: z.number().int().nonnegative().optional(), records: z.array(z.unknown()) }).safeParse(json);
  if (!envelope.success) return { ok: false, reason: 'not a Latchkey data file (no version/records)', newer: false };
  if (envelope.data.version > SCHEMA_VERSION) {
    return { ok: false, reason: `schema version ${envelope.data.version}`, newer: true };
  }
  if (envelope.data.version < OLDEST_READABLE_VERSION || !Number.isInteger(envelope.data.version)) {
    return { ok: false, reason: `unknown schema version ${envelope.data.version}`, newer: false };
  }
  // Each record is checked and the parsed object itself kept: no second copy of a large store.
  const schema = SCHEMAS[name];
  const records = envelope.data.records;
  for (const record of records) {
    const checked = schema.safeParse(record);
    if (!checked.success) {
      return { ok: false, reason: `a record does not match the schema (${checked.error.issues[0]?.message ?? ''})`, newer: false };
    }
  }
  return { ok: true, records: records as Record_[], seq: envelope.data.seq ?? 0 };
}

const SNAPSHOT_HEADER = /^\{"version":(0|[1-9]\d*),"seq":(0|[1-9]\d*),"records":\[$/;

/**
 * Reads a snapshot file as the store writes it, one record per line, parsing line by line:
 * a large store is never held as one multi-megabyte string plus its parse tree at once
 * (that peak, not the records, set the daemon's resident memory). Anything else (a version 1
 * file, a file edited by hand, a damaged one) is judged by {@link parseDataFile} on the whole
 * text, so both paths accept and refuse exactly the same files.
 */
async function readSnapshotFile(
  name: CollectionName,
  file: string,
): Promise<({ ok: true; records: Record_[]; seq: number } | { ok: false; reason: string; newer: boolean }) & { bytes: number }> {
  const handle = await fsp.open(file, 'r');
  let bytes = 0;
  try {
    const records: Record_[] = [];
    const schema = SCHEMAS[name];
    let header: { version: number; seq: number } | undefined;
    let closed = false;
    let fits = true;
    // JSON's commas: every record line but the last ends with one.
    let comma = false;
    for await (const line of handle.readLines({ encoding: 'utf8' })) {
      bytes += Buffer.byteLength(line) + 1;
      if (!fits) continue;
      if (!header) {
        const match = SNAPSHOT_HEADER.exec(line);
        if (!match || Number(match[1]) !== SCHEMA_VERSION || !Number.isSafeInteger(Number(match[2]))) fits = false;
        else header = { version: Number(match[1]), seq: Number(match[2]) };
        continue;
      }
      if (closed || line === ']}') {
        fits = !closed && line === ']}' && !comma;
        closed = true;
        continue;
      }
      if (records.length > 0 && !comma) {
        fits = false;
        continue;
      }
      comma = line.endsWith(',');
      try {
        const record: unknown = JSON.parse(comma ? line.slice(0, -1) : line);
        if (schema.safeParse(record).success) records.push(record as Record_);
        else fits = false;
      } catch {
        fits = false;
      }
    }
    if (fits && header && closed) return { ok: true, records, seq: header.seq, bytes };
  } finally {
    await handle.close();
  }
  const text = await fsp.readFile(file, 'utf8');
  return { ...parseDataFile(name, text), bytes: Buffer.byteLength(text) };
}

/** Checks one journal op against its collection's schema; a deletion carries null. */
export function validJournalOp(op: JournalOp): op is [CollectionName, string, Record_ | null] {
  const [collection, , value] = op;
  if (!isCollection(collection)) return false;
  return value === null || SCHEMAS[collection].safeParse(value).success;
}

/** One-character collection tags of the grant index entries. */
const TAG: Record<CollectionName, string> = { clients: 'l', codes: 'c', accessTokens: 'a', refreshTokens: 'r' };
const UNTAG: Record<string, CollectionName> = { l: 'clients', c: 'codes', a: 'accessTokens', r: 'refreshTokens' };

const keyOf = (name: CollectionName, record: Record_): string => (name === 'clients' ? (record as ClientRecord).clientId : (record as CodeRecord).hash);

/** One snapshot file's text, produced in chunks (see {@link writeFileAtomic}). */
function* snapshotChunks(seq: number, records: Record_[]): Generator<string> {
  yield `{"version":${SCHEMA_VERSION},"seq":${seq},"records":[`;
  for (let i = 0; i < records.length; i += SNAPSHOT_CHUNK) {
    const part = records.slice(i, i + SNAPSHOT_CHUNK).map((r) => JSON.stringify(r));
    yield `${i === 0 ? '' : ','}\n${part.join(',\n')}`;
  }
  yield '\n]}\n';
}

/**
 * Shares the values that repeat across thousands of loaded records (client id, resource,
 * scope list) instead of keeping one copy per record: tens of megabytes at 100,000 tokens.
 * Records are never changed in place, so sharing is safe.
 */
function interner(): (record: Record_) => Record_ {
  const strings = new Map<string, string>();
  const scopeLists = new Map<string, string[]>();
  const one = (value: string): string => {
    const known = strings.get(value);
    if (known !== undefined) return known;
    strings.set(value, value);
    return value;
  };
  return (record) => {
    if (!('grantId' in record)) return record;
    record.clientId = one(record.clientId);
    record.resource = one(record.resource);
    const key = JSON.stringify(record.scopes);
    const scopes = scopeLists.get(key);
    if (scopes) record.scopes = scopes;
    else scopeLists.set(key, record.scopes);
    return record;
  };
}

/** A state read from the data directory, without changing anything in it. */
export interface DataDirState {
  collections: Record<CollectionName, Map<string, Record_>>;
  /** Highest sequence number seen in the snapshots and the journal. */
  seq: number;
  snapshots: Record<CollectionName, { status: 'ok'; seq: number; bytes: number } | { status: 'missing' } | { status: 'bad'; reason: string; newer: boolean }>;
  journals: { file: string; generation: number; bytes: number; records: number; torn: { line: number; bytes: number } | undefined; corrupt: { line: number; reason: string }[] }[];
  /** Journal records applied on top of the snapshots. */
  replayed: number;
  /**
   * Whether the files form one point in time: every snapshot is covered by the journal read
   * (no record missing between a snapshot and the journal, no snapshot newer than it). Only
   * false when a compaction ran while reading; the reader should read again.
   */
  consistent: boolean;
}

/**
 * Reads the snapshots and replays the journal after them, exactly as the daemon does at
 * startup, but only reads. Used by the store itself, `latchkey doctor` and `latchkey backup`.
 * The journal is read before the snapshots: a compaction replaces snapshots before it deletes
 * the journal files they cover, so a reader racing a running daemon sees either a journal
 * file vanish (error code ECHANGED) or `consistent: false`, and reads again. Unreadable files
 * (permissions) throw with the file's path in the message.
 */
export async function readDataDir(dir: string): Promise<DataDirState> {
  const entries = (await fsp.readdir(dir)).flatMap((entry) => {
    const match = JOURNAL_PATTERN.exec(entry);
    return match?.[1] ? [{ file: entry, generation: Number(match[1]) }] : [];
  });
  entries.sort((a, b) => a.generation - b.generation);
  const journalTexts: { file: string; generation: number; text: string }[] = [];
  for (const { file, generation } of entries) {
    try {
      journalTexts.push({ file, generation, text: await fsp.readFile(path.join(dir, file), 'utf8') });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw Object.assign(new Error(`${file} vanished while reading (a compaction finished)`), { code: 'ECHANGED' });
      throw Object.assign(new Error(`cannot read ${path.join(dir, file)}: ${(err as Error).message}`), { code });
    }
  }

  const collections = collectionMaps<Record_>();
  const intern = interner();
  const snapshots = {} as DataDirState['snapshots'];
  const from = {} as Record<CollectionName, number>;
  let seq = 0;
  for (const name of COLLECTIONS) {
    from[name] = 0;
    let parsed: Awaited<ReturnType<typeof readSnapshotFile>>;
    try {
      parsed = await readSnapshotFile(name, path.join(dir, FILES[name]));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw Object.assign(new Error(`cannot read ${path.join(dir, FILES[name])}: ${(err as Error).message}`), { code });
      snapshots[name] = { status: 'missing' };
      continue;
    }
    if (!parsed.ok) {
      snapshots[name] = { status: 'bad', reason: parsed.reason, newer: parsed.newer };
      continue;
    }
    for (const record of parsed.records) collections[name].set(keyOf(name, record), intern(record));
    snapshots[name] = { status: 'ok', seq: parsed.seq, bytes: parsed.bytes };
    from[name] = parsed.seq;
    seq = Math.max(seq, parsed.seq);
  }
  const snapshotSeqs = COLLECTIONS.map((name) => from[name]);

  const journals: DataDirState['journals'] = [];
  let replayed = 0;
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  const parsedJournals = journalTexts.map((j) => ({ ...j, parsed: parseJournal(j.text) }));
  // Sequence numbers only grow from one file to the next. A record whose number a later
  // file uses again is one whose append failed and could not be cut off: never acknowledged.
  const supersededFrom: number[] = [];
  let laterMin = Infinity;
  for (let i = parsedJournals.length - 1; i >= 0; i--) {
    supersededFrom[i] = laterMin;
    for (const record of parsedJournals[i]?.parsed.records ?? []) laterMin = Math.min(laterMin, record.seq);
  }
  for (const [i, { file, generation, text, parsed }] of parsedJournals.entries()) {
    const corrupt = [...parsed.corrupt];
    let records = 0;
    for (const record of parsed.records) {
      if (record.seq >= (supersededFrom[i] ?? Infinity)) continue;
      if (!record.ops.every(validJournalOp)) {
        corrupt.push({ line: record.line, reason: 'a record does not match the schema' });
        continue;
      }
      records++;
      firstSeq ??= record.seq;
      lastSeq = record.seq;
      seq = Math.max(seq, record.seq);
      let applied = false;
      for (const [collection, key, value] of record.ops as [CollectionName, string, Record_ | null][]) {
        if (record.seq <= from[collection]) continue; // the snapshot already holds it
        if (value === null) collections[collection].delete(key);
        else collections[collection].set(key, intern(value));
        applied = true;
      }
      if (applied) replayed++;
    }
    journals.push({ file, generation, bytes: Buffer.byteLength(text), records, torn: parsed.torn, corrupt });
  }
  const consistent =
    firstSeq === undefined || lastSeq === undefined
      ? snapshotSeqs.every((s) => s === snapshotSeqs[0])
      : snapshotSeqs.every((s) => s >= firstSeq - 1 && s <= lastSeq);
  return { collections, seq, snapshots, journals, replayed, consistent };
}

/** A snapshot file's text, as the store writes it. */
export function serializeSnapshot(seq: number, records: Iterable<ClientRecord | CodeRecord | AccessTokenRecord | RefreshTokenRecord>): string {
  return [...snapshotChunks(seq, [...records])].join('');
}

interface Journal {
  handle: fsp.FileHandle;
  generation: number;
  /** Bytes of whole, durable records: where the next append goes. */
  size: number;
  /** An append failed part-way: cut the file back to `size` before the next one. */
  damaged: boolean;
}

export class FileStore implements Store {
  private data: Collections = {
    clients: new Map(),
    codes: new Map(),
    accessTokens: new Map(),
    refreshTokens: new Map(),
  };
  /**
   * grantId → keys of its codes and tokens, per collection, so revoking a grant touches only
   * its own records instead of scanning every token. Kept in step by {@link set}.
   */
  private readonly byGrant = new Map<string, string[]>();
  /** Changes made in memory and not yet handed to an append. */
  private pending: Pending = noPending();
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private lastError: string | undefined;
  /** Sequence number of the last durable journal record. */
  private seq = 0;
  private journal: Journal | undefined;
  /** Journal files older than the current one, not yet folded into the snapshots. */
  private olderJournals: { generation: number; bytes: number }[] = [];
  /** Size of the snapshot files as last written, to scale the compaction threshold. */
  private snapshotBytes = 0;
  private compacting: Promise<void> | undefined;
  private compactionError: string | undefined;
  private compactNotBefore = 0;
  private compactRequested = false;
  /** close() has begun: new changes are refused. */
  private closing = false;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly fs: FsOps,
    private readonly logger: Logger,
    private readonly compactAfterBytes: number,
  ) {}

  static async open(options: FileStoreOptions): Promise<{ store: FileStore; report: LoadReport }> {
    const store = new FileStore(path.resolve(options.dataDir), options.fs ?? nodeFsOps, options.logger, options.compactAfterBytes ?? COMPACT_MIN_BYTES);
    const report = await store.load();
    return { store, report };
  }

  // ---- loading -------------------------------------------------------------------------

  private async load(): Promise<LoadReport> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fsp.chmod(this.dir, 0o700).catch(() => undefined);
    await this.removeStaleTempFiles();
    let state: DataDirState;
    try {
      state = await readDataDir(this.dir);
    } catch (err) {
      throw new StoreOpenError(`${(err as Error).message}. Check that the user running Latchkey owns ${this.dir}.`);
    }
    const setAside: LoadReport['setAside'] = [];
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const name of COLLECTIONS) {
      const file = path.join(this.dir, FILES[name]);
      const snapshot = state.snapshots[name];
      if (snapshot.status === 'ok') {
        this.snapshotBytes += snapshot.bytes;
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
      else this.olderJournals.push({ generation: j.generation, bytes: j.bytes });
    }
    if (state.replayed > 0) this.logger.info({ records: state.replayed, files: state.journals.length }, 'replayed the journal after the snapshots');

    // The maps read are the store's maps from now on (no copy of a large store).
    this.data.clients = state.collections.clients as Map<string, ClientRecord>;
    this.data.codes = state.collections.codes as Map<string, CodeRecord>;
    this.data.accessTokens = state.collections.accessTokens as Map<string, AccessTokenRecord>;
    this.data.refreshTokens = state.collections.refreshTokens as Map<string, RefreshTokenRecord>;
    for (const name of COLLECTIONS) for (const [key, record] of state.collections[name]) this.index(name, key, undefined, record);
    this.seq = state.seq;
    // Always a fresh journal file: an older one may end in a torn record.
    const last = state.journals.at(-1)?.generation ?? 0;
    try {
      this.journal = await this.createJournal(last + 1);
    } catch (err) {
      throw new StoreOpenError(`cannot create a journal file in ${this.dir}: ${(err as Error).message}. Check that the user running Latchkey owns ${this.dir} and that the disk has space.`);
    }
    // Fold what the journal held into the snapshots, in the background; also when a snapshot
    // was just created or set aside while the others are further on (not one point in time:
    // backups would keep waiting for the snapshots to agree).
    if (this.olderJournals.length > 0 || !state.consistent) this.requestCompaction();
    return { counts: await this.counts(Date.now()), setAside, journal };
  }

  /**
   * A crash between writing a temporary file and renaming it leaves the temporary file
   * behind. It never holds anything acknowledged (the rename is the commit), so it goes.
   */
  private async removeStaleTempFiles(): Promise<void> {
    const names = new Set<string>(Object.values(FILES));
    for (const entry of await fsp.readdir(this.dir)) {
      const match = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(entry);
      if (match?.[1] && names.has(match[1])) {
        await fsp.unlink(path.join(this.dir, entry)).catch(() => undefined);
        this.logger.info({ file: entry }, 'removed a temporary file left by an interrupted write');
      }
    }
  }

  private mapOf(name: CollectionName): Map<string, Record_> {
    return this.data[name] as Map<string, Record_>;
  }

  // ---- writing -------------------------------------------------------------------------

  /** Moves `key` in the grant index from the grant of `before` to the grant of `after`. */
  private index(name: CollectionName, key: string, before: Record_ | undefined, after: Record_ | undefined): void {
    if (name === 'clients') return;
    const grantOf = (r: Record_ | undefined): string | undefined => (r as CodeRecord | undefined)?.grantId;
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

  /** Applies a change in memory, remembering the value to restore if the append fails. */
  private set(name: CollectionName, key: string, value: Record_ | undefined): void {
    const map = this.mapOf(name);
    const previous = map.get(key);
    const pending = this.pending[name];
    if (!pending.has(key)) pending.set(key, previous);
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    this.index(name, key, previous, value);
  }

  /** Puts back the values `changes` replaced. */
  private revert(changes: Pending): void {
    for (const name of COLLECTIONS) {
      const map = this.mapOf(name);
      for (const [key, previous] of changes[name]) {
        const current = map.get(key);
        if (previous === undefined) map.delete(key);
        else map.set(key, previous);
        this.index(name, key, current, previous);
      }
    }
  }

  /** Resolves once every change made so far is on disk. */
  private commit(): Promise<void> {
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
    const batch = this.pending;
    this.waiters = [];
    this.pending = noPending();
    const ops: JournalOp[] = [];
    for (const name of COLLECTIONS) for (const key of batch[name].keys()) ops.push([name, key, this.mapOf(name).get(key) ?? null]);
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
    this.revert(this.pending);
    this.revert(batch);
    const queued = this.waiters;
    this.pending = noPending();
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
    return (
      Date.now() >= this.compactNotBefore &&
      this.journalBytes() >= Math.max(this.compactAfterBytes, this.snapshotBytes)
    );
  }

  /** Asks the flush loop to compact at its next pause between appends. */
  private requestCompaction(): void {
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
    const records = {} as Record<CollectionName, Record_[]>;
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

  private async writeSnapshots(seq: number, records: Record<CollectionName, Record_[]>): Promise<void> {
    const started = Date.now();
    const covered = [...this.olderJournals];
    try {
      let bytes = 0;
      for (const name of COLLECTIONS) {
        const file = path.join(this.dir, FILES[name]);
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

  // ---- clients -------------------------------------------------------------------------

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.data.clients.get(clientId);
  }

  async putClient(client: ClientRecord): Promise<void> {
    this.set('clients', client.clientId, client);
    await this.commit();
  }

  touchClient(clientId: string, at: number): void {
    const client = this.data.clients.get(clientId);
    // At most one rewrite a minute per client: this is for the owner's overview, not security.
    if (!client || (client.lastUsedAt !== undefined && at - client.lastUsedAt < 60_000)) return;
    // Goes to disk with the next change that is waited for; losing it in a crash costs nothing.
    this.set('clients', clientId, { ...client, lastUsedAt: at });
  }

  async deleteClient(clientId: string): Promise<boolean> {
    if (!this.data.clients.has(clientId)) return false;
    this.set('clients', clientId, undefined);
    for (const name of ['codes', 'accessTokens', 'refreshTokens'] as const) {
      for (const [key, record] of this.data[name]) if (record.clientId === clientId) this.set(name, key, undefined);
    }
    await this.commit();
    return true;
  }

  async clientCount(): Promise<number> {
    return this.data.clients.size;
  }

  async listClients(): Promise<ClientRecord[]> {
    return [...this.data.clients.values()].sort((a, b) => a.issuedAt - b.issuedAt);
  }

  // ---- codes ---------------------------------------------------------------------------

  async putCode(code: CodeRecord): Promise<void> {
    this.set('codes', code.hash, code);
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
    this.set('codes', hash, { ...code, consumedAt: now });
    this.set('accessTokens', issued.access.hash, issued.access);
    if (issued.refresh) this.set('refreshTokens', issued.refresh.hash, issued.refresh);
    await this.commit();
    return code;
  }

  // ---- tokens --------------------------------------------------------------------------

  async putTokens(access: AccessTokenRecord, refresh: RefreshTokenRecord | undefined): Promise<void> {
    this.set('accessTokens', access.hash, access);
    if (refresh) this.set('refreshTokens', refresh.hash, refresh);
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
    this.set('refreshTokens', hash, { ...token, rotatedAt: now, expiresAt: Math.min(token.expiresAt, retainUntil) });
    this.set('accessTokens', successors.access.hash, successors.access);
    this.set('refreshTokens', successors.refresh.hash, successors.refresh);
    await this.commit();
    return token;
  }

  async deleteAccessToken(hash: string): Promise<boolean> {
    if (!this.data.accessTokens.has(hash)) return false;
    this.set('accessTokens', hash, undefined);
    await this.commit();
    return true;
  }

  async revokeGrant(grantId: string): Promise<number> {
    const entries = [...(this.byGrant.get(grantId) ?? [])];
    for (const entry of entries) {
      const collection = UNTAG[entry.charAt(0)];
      // The index only ever holds the tags it was given; anything else is a bug, not a code.
      if (collection === undefined) throw new Error(`grant index entry with an unknown tag: ${entry.charAt(0)}`);
      this.set(collection, entry.slice(1), undefined);
    }
    if (entries.length > 0) await this.commit();
    return entries.length;
  }

  async listGrants(now: number): Promise<GrantSummary[]> {
    const grants = new Map<string, GrantSummary>();
    const add = (token: AccessTokenRecord | RefreshTokenRecord, isAccess: boolean): void => {
      const grant = grants.get(token.grantId) ?? {
        grantId: token.grantId,
        clientId: token.clientId,
        scopes: token.scopes,
        resource: token.resource,
        issuedAt: token.issuedAt,
        expiresAt: token.expiresAt,
        accessTokens: 0,
        refreshable: false,
      };
      grant.issuedAt = Math.min(grant.issuedAt, token.issuedAt);
      grant.expiresAt = Math.max(grant.expiresAt, token.expiresAt);
      if (isAccess) grant.accessTokens++;
      else grant.refreshable = true;
      grants.set(token.grantId, grant);
    };
    for (const t of this.data.refreshTokens.values()) if (t.expiresAt > now && t.rotatedAt === undefined) add(t, false);
    for (const t of this.data.accessTokens.values()) if (t.expiresAt > now) add(t, true);
    return [...grants.values()].sort((a, b) => a.issuedAt - b.issuedAt);
  }

  // ---- housekeeping --------------------------------------------------------------------

  async deleteExpired(now: number): Promise<ExpiredCounts> {
    const counts: ExpiredCounts = { codes: 0, accessTokens: 0, refreshTokens: 0 };
    for (const name of ['codes', 'accessTokens', 'refreshTokens'] as const) {
      for (const [key, record] of this.data[name]) {
        if (record.expiresAt <= now) {
          this.set(name, key, undefined);
          counts[name]++;
        }
      }
    }
    if (counts.codes + counts.accessTokens + counts.refreshTokens > 0) await this.commit();
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
    if (pendingSize(this.pending) > 0) await this.enqueue().catch(() => undefined);
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

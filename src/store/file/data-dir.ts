import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { collectionMaps, COLLECTIONS, FILES, keyOf, OPTIONAL_COLLECTIONS, validJournalOp, type CollectionName, type FileRecord } from './collections.js';
import { JOURNAL_PATTERN, parseJournal } from './journal.js';
import { readSnapshotFile, type RejectedRecord } from './snapshot.js';
import { StoreOpenError } from '../types.js';

/**
 * The data directory as a whole: its modes, the temporary files an interrupted write leaves,
 * and reading its state (the snapshots with the journal replayed after them) without
 * changing anything. The daemon's store, `latchkey doctor` and `latchkey backup` all read it
 * through {@link readDataDir}.
 */

/**
 * Creates the data directory if it does not exist, private (0700): it holds the consent key
 * and token hashes. An existing directory is the owner's: its mode is never changed, but
 * Latchkey refuses to start on one that belongs to another user or that group or others can
 * write (they could replace the data, the consent key or the control socket), with a line
 * that says how to fix it.
 */
export async function prepareDataDir(dir: string, variable = 'OAUTH_DATA_DIR'): Promise<void> {
  let stat: Stats;
  try {
    stat = await fsp.stat(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    // mkdir says whether it made the directory: if someone else made it in the meantime, it is
    // theirs, and is checked below like any existing one instead of being chmod'ed.
    const made = await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    if (made !== undefined) {
      // mkdir's mode passes through the umask; this directory is ours to make private.
      await fsp.chmod(dir, 0o700);
      return;
    }
    stat = await fsp.stat(dir);
  }
  const where = path.resolve(dir);
  if (!stat.isDirectory()) throw new StoreOpenError(`${where} (${variable}) is not a directory: point ${variable} at a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new StoreOpenError(`${where} (${variable}) belongs to uid ${stat.uid}, but Latchkey runs as uid ${uid}: run Latchkey as that user, or give it the directory: chown -R ${uid} ${where}`);
  }
  const writable = stat.mode & 0o022;
  if (writable) {
    const who = writable === 0o022 ? 'group and others' : writable & 0o020 ? 'its group' : 'others';
    throw new StoreOpenError(
      `${where} (${variable}) is writable by ${who} (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}), who could replace its data or consent key: chmod 700 ${where}`,
    );
  }
}

/**
 * A crash between writing a temporary file and renaming it leaves the temporary file
 * behind. It never holds anything acknowledged (the rename is the commit), so it goes.
 * Only the snapshot files' temporaries are touched; anything else in the directory stays.
 */
export async function removeStaleTempFiles(dir: string, logger: Logger): Promise<void> {
  const names = new Set<string>(Object.values(FILES));
  for (const entry of await fsp.readdir(dir)) {
    const match = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(entry);
    if (match?.[1] && names.has(match[1])) {
      await fsp.unlink(path.join(dir, entry)).catch(() => undefined);
      logger.info({ file: entry }, 'removed a temporary file left by an interrupted write');
    }
  }
}

/**
 * Shares the values that repeat across thousands of loaded records (client id, resource,
 * scope list) instead of keeping one copy per record: tens of megabytes at 100,000 tokens.
 * Records are never changed in place, so sharing is safe.
 */
function interner(): (record: FileRecord) => FileRecord {
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

/**
 * What a snapshot file held. The missing file of an optional collection (see
 * OPTIONAL_COLLECTIONS) is an empty snapshot, `absent`, that any journal record applies to.
 */
export type SnapshotStatus =
  | { status: 'ok'; seq: number; bytes: number; absent?: true; rejected?: RejectedRecord[]; cutShort?: true }
  | { status: 'missing' }
  | { status: 'bad'; reason: string; newer: boolean };

/** A state read from the data directory, without changing anything in it. */
export interface DataDirState {
  collections: Record<CollectionName, Map<string, FileRecord>>;
  /** Highest sequence number seen in the snapshots and the journal. */
  seq: number;
  snapshots: Record<CollectionName, SnapshotStatus>;
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

  const collections = collectionMaps<FileRecord>();
  const intern = interner();
  const snapshots = {} as DataDirState['snapshots'];
  const from = {} as Record<CollectionName, number>;
  /** The snapshots that must agree on one point in time. */
  const present: CollectionName[] = [];
  let seq = 0;
  for (const name of COLLECTIONS) {
    from[name] = 0;
    let parsed: Awaited<ReturnType<typeof readSnapshotFile>>;
    try {
      parsed = await readSnapshotFile(name, path.join(dir, FILES[name]));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw Object.assign(new Error(`cannot read ${path.join(dir, FILES[name])}: ${(err as Error).message}`), { code });
      if (OPTIONAL_COLLECTIONS.has(name)) snapshots[name] = { status: 'ok', seq: 0, bytes: 0, absent: true };
      else {
        snapshots[name] = { status: 'missing' };
        present.push(name);
      }
      continue;
    }
    present.push(name);
    if (!parsed.ok) {
      snapshots[name] = { status: 'bad', reason: parsed.reason, newer: parsed.newer };
      continue;
    }
    for (const record of parsed.records) collections[name].set(keyOf(name, record), intern(record));
    snapshots[name] = {
      status: 'ok',
      seq: parsed.seq,
      bytes: parsed.bytes,
      ...(parsed.rejected.length > 0 ? { rejected: parsed.rejected } : {}),
      ...(parsed.cutShort ? { cutShort: parsed.cutShort } : {}),
    };
    from[name] = parsed.seq;
    seq = Math.max(seq, parsed.seq);
  }
  const snapshotSeqs = present.map((name) => from[name]);

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
      for (const [collection, key, value] of record.ops as [CollectionName, string, FileRecord | null][]) {
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

/** Files that hold data Latchkey could not read and kept aside: `<file>.corrupt-<time>` (a whole file) or `<file>.rejected-<time>` (single records). */
export const SET_ASIDE_FILE = /\.(corrupt|rejected)-[0-9TZ-]+(\.jsonl)?$/;

/** The set-aside files in the data directory: each waits for the owner to look at it and delete it. */
export async function setAsideFiles(dir: string): Promise<string[]> {
  return (await fsp.readdir(dir).catch(() => [] as string[])).filter((entry) => SET_ASIDE_FILE.test(entry)).sort();
}

/**
 * Reads the directory until what it read is one point in time: a running daemon may finish
 * a compaction meanwhile (a journal file vanishes, or the snapshots disagree), and the next
 * read is then settled. A snapshot that does not parse is returned as it is (reading again
 * would not help). Undefined if it kept changing for `tries` reads; throws what
 * {@link readDataDir} throws otherwise (ENOENT: no such directory).
 */
export async function readDataDirSettled(dir: string, tries = 20): Promise<DataDirState | undefined> {
  for (let attempt = 0; attempt < tries; attempt++) {
    try {
      const read = await readDataDir(dir);
      if (read.consistent || Object.values(read.snapshots).some((snap) => snap.status === 'bad')) return read;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ECHANGED') throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}

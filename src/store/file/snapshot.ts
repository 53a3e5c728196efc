import { promises as fsp } from 'node:fs';
import { z } from 'zod';
import { SCHEMAS, type CollectionName, type FileRecord } from './collections.js';

/**
 * The snapshot files: `{"version":2,"seq":n,"records":[...]}`, one record per line, each the
 * whole state of one collection up to journal sequence number `seq`. Reading and writing them
 * is this module's one job; the daemon, `latchkey doctor` and `latchkey backup` all judge a
 * file through it.
 */

/** The snapshot format written now: `{"version":2,"seq":n,"records":[...]}`. */
export const SCHEMA_VERSION = 2;
/** Version 1 files (no journal, no `seq`) are read as snapshots at sequence 0. */
const OLDEST_READABLE_VERSION = 1;
/** Records per chunk when serializing a snapshot: small enough to keep each step short. */
const SNAPSHOT_CHUNK = 1_000;

/** A record line that could not be read: kept aside, never loaded, never silently dropped. */
export interface RejectedRecord {
  /** Line number in the file (from 1), or the record's position for a file not written one record per line. */
  line: number;
  reason: string;
  /** The record's text, byte for byte. */
  text: string;
}

export type SnapshotParse =
  | {
      ok: true;
      records: FileRecord[];
      seq: number;
      rejected: RejectedRecord[];
      /** The file ends before its closing line: records after the cut are missing. */
      cutShort?: true;
    }
  | { ok: false; reason: string; newer: boolean };

/**
 * Reads one snapshot file: its envelope, schema version, sequence number and every record.
 * Shared with `latchkey doctor` and `latchkey backup`, so they judge a file exactly as the
 * daemon does.
 */
export function parseDataFile(name: CollectionName, text: string): SnapshotParse {
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
  // One record that does not fit is set aside; the others still load.
  const schema = SCHEMAS[name];
  const records: FileRecord[] = [];
  const rejected: RejectedRecord[] = [];
  for (const [i, record] of envelope.data.records.entries()) {
    const checked = schema.safeParse(record);
    if (checked.success) records.push(record as FileRecord);
    else rejected.push({ line: i + 1, reason: schemaReason(checked.error), text: JSON.stringify(record) });
  }
  return { ok: true, records, seq: envelope.data.seq ?? 0, rejected };
}

const schemaReason = (error: z.ZodError): string => {
  const issue = error.issues[0];
  return `does not match the schema (${issue ? `${issue.path.join('.') || 'record'}: ${issue.message}` : 'invalid'})`;
};

const SNAPSHOT_HEADER = /^\{"version":(0|[1-9]\d*),"seq":(0|[1-9]\d*),"records":\[$/;

/**
 * Reads a snapshot file as the store writes it, one record per line, parsing line by line:
 * a large store is never held as one multi-megabyte string plus its parse tree at once
 * (that peak, not the records, set the daemon's resident memory).
 *
 * Damage costs only what it touches. A record line that is not JSON or breaks the schema is
 * rejected on its own; so is anything after the closing line (a crash's zero-filled tail, stray
 * text). A file cut short (no closing line) keeps every whole record before the cut, and says
 * so (`cutShort`). Only a file whose header cannot be read (a version 1 file, a file edited by
 * hand, a damaged one) is judged by {@link parseDataFile} on the whole text.
 */
export async function readSnapshotFile(name: CollectionName, file: string): Promise<SnapshotParse & { bytes: number }> {
  const handle = await fsp.open(file, 'r');
  let bytes = 0;
  let header: { version: number; seq: number } | undefined;
  let headerBad = false;
  const records: FileRecord[] = [];
  const rejected: RejectedRecord[] = [];
  let closed = false;
  try {
    const schema = SCHEMAS[name];
    let lineNumber = 0;
    for await (const line of handle.readLines({ encoding: 'utf8' })) {
      lineNumber++;
      bytes += Buffer.byteLength(line) + 1;
      if (headerBad) continue;
      if (!header) {
        const match = SNAPSHOT_HEADER.exec(line);
        if (!match || Number(match[1]) !== SCHEMA_VERSION || !Number.isSafeInteger(Number(match[2]))) headerBad = true;
        else header = { version: Number(match[1]), seq: Number(match[2]) };
        continue;
      }
      if (closed) {
        // A crash that extended the file leaves zeros; anything else there is damage too.
        if (line.replace(/\0/g, '').trim() !== '') rejected.push({ line: lineNumber, reason: 'follows the end of the snapshot', text: line });
        continue;
      }
      if (line === ']}') {
        closed = true;
        continue;
      }
      const text = line.endsWith(',') ? line.slice(0, -1) : line;
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch {
        rejected.push({ line: lineNumber, reason: 'is not valid JSON', text: line });
        continue;
      }
      const checked = schema.safeParse(record);
      if (checked.success) records.push(record as FileRecord);
      else rejected.push({ line: lineNumber, reason: schemaReason(checked.error), text });
    }
  } finally {
    await handle.close();
  }
  if (header && !headerBad) return { ok: true, records, seq: header.seq, bytes, rejected, ...(closed ? {} : { cutShort: true as const }) };
  const text = await fsp.readFile(file, 'utf8');
  return { ...parseDataFile(name, text), bytes: Buffer.byteLength(text) };
}

/** One snapshot file's text, produced in chunks (see writeFileAtomic). */
export function* snapshotChunks(seq: number, records: readonly FileRecord[]): Generator<string> {
  yield `{"version":${SCHEMA_VERSION},"seq":${seq},"records":[`;
  for (let i = 0; i < records.length; i += SNAPSHOT_CHUNK) {
    const part = records.slice(i, i + SNAPSHOT_CHUNK).map((r) => JSON.stringify(r));
    yield `${i === 0 ? '' : ','}\n${part.join(',\n')}`;
  }
  yield '\n]}\n';
}

/** A snapshot file's text, as the store writes it. */
export function serializeSnapshot(seq: number, records: Iterable<FileRecord>): string {
  return [...snapshotChunks(seq, [...records])].join('');
}

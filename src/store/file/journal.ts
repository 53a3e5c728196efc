import { createHash } from 'node:crypto';

/**
 * The journal's on-disk format. Every committed batch of changes is one line:
 *
 *     <checksum> {"seq":<n>,"ops":[[<collection>,<key>,<record or null>], ...]}\n
 *
 * where the checksum is the first 16 hex digits of the SHA-256 of the JSON text. An op
 * carries the whole new record (or null for a deletion), never a delta, so replaying a
 * record twice gives the same state. A batch is one line, so it is applied whole or not at
 * all: a crash in the middle of an append leaves a last line that fails its checksum (or has
 * no newline), and only that line, never acknowledged, is dropped.
 */

export const JOURNAL_PATTERN = /^journal-(\d{8})\.log$/;

export const journalFileName = (generation: number): string => `journal-${String(generation).padStart(8, '0')}.log`;

export type JournalOp = [collection: string, key: string, value: unknown];

export interface JournalRecord {
  seq: number;
  ops: JournalOp[];
}

export interface ParsedJournal {
  /** The good records, each with its line number (from 1). */
  records: (JournalRecord & { line: number })[];
  /** A last line that is incomplete or fails its checksum: a crash during an append. */
  torn: { line: number; bytes: number } | undefined;
  /** Lines that fail their checksum but have good lines after them: damage, not a crash. */
  corrupt: { line: number; reason: string }[];
  /** Bytes of the good lines, from the start of the file. */
  goodBytes: number;
}

const checksum = (json: string): string => createHash('sha256').update(json).digest('hex').slice(0, 16);

export function encodeJournalRecord(record: JournalRecord): string {
  const json = JSON.stringify(record);
  return `${checksum(json)} ${json}\n`;
}

function decodeLine(line: string): JournalRecord | string {
  const space = line.indexOf(' ');
  if (space !== 16) return 'no checksum';
  const json = line.slice(17);
  if (checksum(json) !== line.slice(0, 16)) return 'checksum mismatch';
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return 'not JSON';
  }
  const record = value as Partial<JournalRecord> | null;
  if (
    typeof record !== 'object' ||
    record === null ||
    typeof record.seq !== 'number' ||
    !Array.isArray(record.ops) ||
    !record.ops.every((op) => Array.isArray(op) && op.length === 3 && typeof op[0] === 'string' && typeof op[1] === 'string')
  ) {
    return 'not a journal record';
  }
  return { seq: record.seq, ops: record.ops };
}

/** Splits a journal file into its records, setting aside a torn last line and damaged lines. */
export function parseJournal(text: string): ParsedJournal {
  const lines = text.split('\n');
  // The piece after the last newline is empty for a clean file, and a torn write otherwise.
  const tail = lines.pop() ?? '';
  const decoded = lines.map((line, i) => ({ line: i + 1, bytes: Buffer.byteLength(line) + 1, result: decodeLine(line) }));
  let torn: ParsedJournal['torn'];
  if (tail !== '') torn = { line: lines.length + 1, bytes: Buffer.byteLength(tail) };
  else if (decoded.length > 0 && typeof decoded[decoded.length - 1]?.result === 'string') {
    const last = decoded.pop();
    if (last) torn = { line: last.line, bytes: last.bytes };
  }
  const records: ParsedJournal['records'] = [];
  const corrupt: ParsedJournal['corrupt'] = [];
  let goodBytes = 0;
  for (const { line, bytes, result } of decoded) {
    if (typeof result === 'string') corrupt.push({ line, reason: result });
    else records.push({ ...result, line });
    goodBytes += bytes;
  }
  return { records, torn, corrupt, goodBytes };
}

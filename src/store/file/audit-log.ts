import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { auditEventSchema, type AuditEvent } from '../records.js';
import { StoreUnavailableError, type AuditQuery, type AuditStore } from '../types.js';
import type { FsOps } from './atomic-file.js';

/**
 * The audit log of the file backend: JSON lines in `<dataDir>/audit/<YYYY-MM-DD>.jsonl`, one
 * file per UTC day of the events' `at`, mode 0600. An append resolves once its line is
 * fsync'd; appends that arrive while one is being written share the next write and fsync
 * (group commit). A crash can leave only a torn last line, never acknowledged: readers skip
 * it, and the next append to that file cuts it off first. Pruning deletes whole days.
 */

export const AUDIT_DIR = 'audit';
const DAY_MS = 86_400_000;
const DAY_FILE = /^(\d{4}-\d{2}-\d{2})\.jsonl$/;
/** Day files kept open for appending: today's, and yesterday's for events stamped just before midnight. */
const OPEN_FILES = 2;

const dayOf = (at: number): string => new Date(at).toISOString().slice(0, 10);
/** The day file (in the audit directory) an event stamped `at` belongs in. */
export const auditDayFile = (at: number): string => `${dayOf(at)}.jsonl`;
const dayStart = (day: string): number => Date.parse(`${day}T00:00:00.000Z`);

interface DayFile {
  handle: fsp.FileHandle;
  /** Bytes of whole, durable lines: where the next append goes. */
  size: number;
  /** An append failed part-way: cut the file back to `size` before the next one. */
  damaged: boolean;
}

interface Queued {
  day: string;
  line: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** The whole events of one day file's text, in the order appended; a torn or damaged line is skipped. */
function parseDay(text: string): AuditEvent[] {
  const lines = text.split('\n');
  lines.pop(); // empty after the last newline, or a torn line a crash cut short
  const events: AuditEvent[] = [];
  for (const line of lines) {
    try {
      const parsed = auditEventSchema.safeParse(JSON.parse(line));
      if (parsed.success) events.push(parsed.data);
    } catch {
      // A damaged line: the others still count.
    }
  }
  return events;
}

/**
 * The day files of an audit directory with their whole lines (a torn last line left out),
 * oldest first: what `latchkey backup` copies. None if the directory does not exist.
 */
export async function readAuditDays(dir: string): Promise<{ file: string; text: string }[]> {
  let names: string[];
  try {
    names = (await fsp.readdir(dir)).filter((n) => DAY_FILE.test(n)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const days: { file: string; text: string }[] = [];
  for (const file of names) {
    try {
      const text = await fsp.readFile(path.join(dir, file), 'utf8');
      days.push({ file, text: text.slice(0, text.lastIndexOf('\n') + 1) });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // pruned meanwhile
    }
  }
  return days;
}

export class FileAuditLog implements AuditStore {
  private queue: Queued[] = [];
  private flushing: Promise<void> | undefined;
  private readonly files = new Map<string, DayFile>();
  private closed = false;

  constructor(
    /** The audit directory, `<dataDir>/audit`; created on the first append. */
    private readonly dir: string,
    private readonly fs: FsOps,
    private readonly logger: Logger,
  ) {}

  append(event: AuditEvent): Promise<void> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the store is shutting down'));
    if (!auditEventSchema.safeParse(event).success || !Number.isFinite(event.at)) {
      return Promise.reject(new TypeError('not an audit event: `at` and `type` are required, `detail` holds strings, numbers, booleans or string lists'));
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ day: dayOf(event.at), line: `${JSON.stringify(event)}\n`, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      // Never finish synchronously: `flushing` is assigned after this call returns.
      await null;
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const byDay = new Map<string, Queued[]>();
        for (const item of batch) byDay.set(item.day, [...(byDay.get(item.day) ?? []), item]);
        for (const [day, items] of byDay) {
          try {
            await this.appendTo(day, items.map((i) => i.line).join(''));
            for (const i of items) i.resolve();
          } catch (err) {
            const e = err as NodeJS.ErrnoException;
            this.logger.error({ errno: e.code, reason: e.message }, 'could not write the audit log; events were refused');
            const error = new StoreUnavailableError(e.code ?? e.message);
            for (const i of items) i.reject(error);
          }
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async appendTo(day: string, text: string): Promise<void> {
    const file = await this.open(day);
    const buf = Buffer.from(text, 'utf8');
    if (file.damaged) await this.cutOff(file);
    file.damaged = true;
    try {
      await this.fs.write(file.handle, buf, file.size);
      await this.fs.fsync(file.handle);
    } catch (err) {
      // Nothing refused may be read back later: cut off what the failed write left.
      await this.cutOff(file).catch(() => undefined);
      throw err;
    }
    file.damaged = false;
    file.size += buf.length;
  }

  private async cutOff(file: DayFile): Promise<void> {
    await this.fs.truncate(file.handle, file.size);
    await this.fs.fsync(file.handle);
    file.damaged = false;
  }

  /** The day's file, open for appending; created (and made durable in the directory) if new. */
  private async open(day: string): Promise<DayFile> {
    const known = this.files.get(day);
    if (known) return known;
    const name = path.join(this.dir, `${day}.jsonl`);
    let handle: fsp.FileHandle;
    try {
      handle = await this.fs.open(name, 'r+', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await this.ensureDir();
      handle = await this.fs.open(name, 'wx+', 0o600);
      try {
        await this.fs.fsyncDir(this.dir);
      } catch (e) {
        await handle.close();
        await this.fs.unlink(name).catch(() => undefined);
        throw e;
      }
    }
    const file: DayFile = { handle, size: (await handle.stat()).size, damaged: false };
    if (file.size > 0) {
      // A torn last line (a crash mid-append) would swallow the next event: cut it off.
      const text = await handle.readFile();
      const whole = text.lastIndexOf(10) + 1;
      if (whole < file.size) {
        this.logger.warn({ file: name, bytes: file.size - whole }, 'dropped the torn last line of the audit log: a crash cut it short before it was acknowledged');
        file.size = whole;
        try {
          await this.cutOff(file);
        } catch (e) {
          await handle.close();
          throw e;
        }
      }
    }
    this.files.set(day, file);
    for (const [other, open] of this.files) {
      if (this.files.size <= OPEN_FILES) break;
      this.files.delete(other);
      await open.handle.close().catch(() => undefined);
    }
    return file;
  }

  private async ensureDir(): Promise<void> {
    try {
      await fsp.mkdir(this.dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw err;
    }
    await this.fs.fsyncDir(path.dirname(this.dir));
  }

  /** The day files present, newest first. */
  private async days(): Promise<string[]> {
    try {
      return (await fsp.readdir(this.dir)).flatMap((n) => DAY_FILE.exec(n)?.[1] ?? []).sort().reverse();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private async readDay(day: string): Promise<AuditEvent[]> {
    try {
      return parseDay(await fsp.readFile(path.join(this.dir, `${day}.jsonl`), 'utf8'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []; // pruned meanwhile
      throw err;
    }
  }

  async list(query: AuditQuery): Promise<AuditEvent[]> {
    const result: AuditEvent[] = [];
    let skip = query.offset ?? 0;
    for (const day of await this.days()) {
      if (result.length >= query.limit) break;
      if (query.since !== undefined && dayStart(day) + DAY_MS <= query.since) break;
      if (query.until !== undefined && dayStart(day) >= query.until) continue;
      // Each event is in the file of its own day, so newest day first and newest within a
      // day first is newest first overall; the same instant keeps the reverse append order.
      const events = (await this.readDay(day))
        .map((event, i) => ({ event, i }))
        .filter(
          ({ event: e }) =>
            (query.since === undefined || e.at >= query.since) &&
            (query.until === undefined || e.at < query.until) &&
            (query.subject === undefined || e.subject === query.subject) &&
            (query.clientId === undefined || e.clientId === query.clientId) &&
            (query.type === undefined || e.type === query.type),
        )
        .sort((a, b) => b.event.at - a.event.at || b.i - a.i);
      for (const { event } of events) {
        if (result.length >= query.limit) break;
        if (skip > 0) skip--;
        else result.push(event);
      }
    }
    return result;
  }

  async prune(before: number): Promise<number> {
    let removed = 0;
    let files = 0;
    for (const day of await this.days()) {
      if (dayStart(day) + DAY_MS > before) continue;
      removed += (await this.readDay(day)).length;
      files++;
      const open = this.files.get(day);
      if (open) {
        this.files.delete(day);
        await open.handle.close().catch(() => undefined);
      }
      await this.fs.unlink(path.join(this.dir, `${day}.jsonl`)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    }
    if (files > 0) await this.fs.fsyncDir(this.dir);
    return removed;
  }

  /** Waits for the appends under way and closes the files. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    for (const file of this.files.values()) await file.handle.close().catch(() => undefined);
    this.files.clear();
  }
}

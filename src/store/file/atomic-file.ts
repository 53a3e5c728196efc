import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * The filesystem calls the file store makes, gathered so tests can inject faults
 * (ENOSPC, EIO, EACCES) into any one of them.
 */
export interface FsOps {
  open(file: string, flags: string, mode: number): Promise<fsp.FileHandle>;
  /** Writes all of `data` at byte `position` of the file. */
  write(handle: fsp.FileHandle, data: string | Buffer, position: number): Promise<void>;
  /** Cuts the file to `length` bytes (drops what a failed append left). */
  truncate(handle: fsp.FileHandle, length: number): Promise<void>;
  fsync(handle: fsp.FileHandle): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsync of a directory, so a rename inside it is durable. */
  fsyncDir(dir: string): Promise<void>;
  unlink(file: string): Promise<void>;
}

export const nodeFsOps: FsOps = {
  open: (file, flags, mode) => fsp.open(file, flags, mode),
  write: async (handle, data, position) => {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
      done += bytesWritten;
    }
  },
  truncate: (handle, length) => handle.truncate(length),
  fsync: (handle) => handle.sync(),
  rename: (from, to) => fsp.rename(from, to),
  fsyncDir: async (dir) => {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  unlink: (file) => fsp.unlink(file),
};

let tmpCounter = 0;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old or the
 * new content, never a mix: write a temporary file in the same directory (mode 0600),
 * fsync it, rename it over the target, then fsync the directory.
 *
 * `data` may be a sequence of chunks, produced one at a time: between two chunks the event
 * loop is free to serve requests, so a large file is never serialized in one blocking step.
 */
export async function writeFileAtomic(fs: FsOps, file: string, data: string | Iterable<string>): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
  let renamed = false;
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      if (typeof data === 'string') await fs.write(handle, data, 0);
      else {
        let position = 0;
        for (const chunk of data) {
          const buf = Buffer.from(chunk, 'utf8');
          await fs.write(handle, buf, position);
          position += buf.length;
          await yieldToEventLoop();
        }
      }
      await fs.fsync(handle);
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
    renamed = true;
    await fs.fsyncDir(dir);
  } catch (err) {
    if (!renamed) await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

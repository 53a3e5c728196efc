import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * The filesystem calls the file store makes, gathered so tests can inject faults
 * (ENOSPC, EIO, EACCES) into any one of them.
 */
export interface FsOps {
  open(file: string, flags: string, mode: number): Promise<fsp.FileHandle>;
  write(handle: fsp.FileHandle, data: string): Promise<void>;
  fsync(handle: fsp.FileHandle): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** fsync of a directory, so a rename inside it is durable. */
  fsyncDir(dir: string): Promise<void>;
  unlink(file: string): Promise<void>;
}

export const nodeFsOps: FsOps = {
  open: (file, flags, mode) => fsp.open(file, flags, mode),
  write: async (handle, data) => {
    await handle.writeFile(data, 'utf8');
  },
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

/**
 * Replaces `file` with `data` so that a crash at any moment leaves either the old or the
 * new content, never a mix: write a temporary file in the same directory (mode 0600),
 * fsync it, rename it over the target, then fsync the directory.
 */
export async function writeFileAtomic(fs: FsOps, file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
  let renamed = false;
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      await fs.write(handle, data);
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

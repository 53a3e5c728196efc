import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { prepareDataDir } from './data-dir.js';

export const LOCK_FILE = 'latchkey.pid';

/** Another live daemon holds the data directory. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

/** Is `pid` a running process other than us that looks like a Node program? */
function heldByLiveDaemon(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user, which still means "in use".
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // After a reboot or in a fresh container the pid may belong to something unrelated;
  // where /proc tells us the command line, only a node process counts as the holder.
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return true;
  }
}

/**
 * Two daemons on one data directory would each rewrite the files from their own memory and
 * silently undo each other's registrations and tokens. A pid file, created exclusively,
 * makes the second one stop at startup instead. A file left by a crash (kill -9) names a
 * dead process and is taken over. Returns a function that releases the lock.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  await prepareDataDir(dataDir);
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await fsp.writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return async () => {
        await fsp.unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number((await fsp.readFile(file, 'utf8').catch(() => '')).trim());
    if (heldByLiveDaemon(holder)) {
      throw new DataDirLockedError(
        `another Latchkey (pid ${holder}) is already using ${path.resolve(dataDir)}: stop it first, or give this one its own OAUTH_DATA_DIR`,
      );
    }
    await fsp.unlink(file).catch(() => undefined); // stale: its process is gone
  }
  throw new DataDirLockedError(`could not take the lock ${file}; another Latchkey may be starting`);
}

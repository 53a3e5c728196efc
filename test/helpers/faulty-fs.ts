import { nodeFsOps, type FsOps } from '../../src/store/file/atomic-file.js';

export type FaultCode = 'ENOSPC' | 'EIO' | 'EACCES';

export interface FaultyFs {
  fs: FsOps;
  /** From now on `op` fails with `code`; undefined clears the fault. */
  fail(op: keyof FsOps | undefined, code?: FaultCode): void;
  /** How many guarded operations were attempted so far (failed ones included). */
  calls(): number;
}

const MESSAGES: Record<FaultCode, string> = {
  ENOSPC: 'no space left on device',
  EIO: 'i/o error',
  EACCES: 'permission denied',
};

/** The real filesystem calls, any one of which can be made to fail like a sick disk. */
export function faultyFs(): FaultyFs {
  let failing: { op: keyof FsOps; code: FaultCode } | undefined;
  let calls = 0;
  const guard =
    <A extends unknown[], R>(op: keyof FsOps, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      calls++;
      if (failing?.op === op) throw Object.assign(new Error(`${failing.code}: ${MESSAGES[failing.code]}`), { code: failing.code });
      return fn(...args);
    };
  const fs: FsOps = {
    open: guard('open', nodeFsOps.open),
    write: guard('write', nodeFsOps.write),
    truncate: guard('truncate', nodeFsOps.truncate),
    fsync: guard('fsync', nodeFsOps.fsync),
    rename: guard('rename', nodeFsOps.rename),
    fsyncDir: guard('fsyncDir', nodeFsOps.fsyncDir),
    // Cleaning up a temporary file must keep working, or a fault would leave litter behind.
    unlink: nodeFsOps.unlink,
  };
  return { fs, fail: (op, code = 'ENOSPC') => void (failing = op ? { op, code } : undefined), calls: () => calls };
}

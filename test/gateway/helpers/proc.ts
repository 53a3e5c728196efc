import { readdirSync, readFileSync } from 'node:fs';

/**
 * Processes as the kernel sees them, from /proc: the proof that no child outlives the
 * daemon does not rely on anything the daemon says about itself.
 */
interface ProcStat {
  pid: number;
  state: string;
  ppid: number;
  pgid: number;
}

function stat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: parse after it.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]), pgid: Number(rest[2]) };
}

function allStats(): ProcStat[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => stat(Number(name)))
    .filter((s): s is ProcStat => s !== undefined);
}

/** Every live process descended from `pid`. */
export function descendants(pid: number): number[] {
  const stats = allStats();
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift();
    for (const s of stats) {
      if (s.ppid === parent && s.state !== 'Z') {
        found.push(s.pid);
        queue.push(s.pid);
      }
    }
  }
  return found;
}

/** Alive means present and not a zombie (a zombie has exited; only its exit status is left). */
export function isAlive(pid: number): boolean {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z';
}

export function processGroupOf(pid: number): number | undefined {
  return stat(pid)?.pgid;
}

export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Waits until none of `pids` is alive; throws with the survivors after `timeoutMs`. */
export async function waitUntilGone(pids: readonly number[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter(isAlive);
    if (alive.length === 0) return;
    if (Date.now() > deadline) throw new Error(`still alive: ${alive.map((p) => `${p} (${commandLine(p)})`).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Waits until `check` holds; for state that changes in the background. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

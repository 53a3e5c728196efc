import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';

/**
 * A stdio MCP server started so that it cannot outlive Latchkey, even a Latchkey killed
 * with SIGKILL, which runs no cleanup code at all.
 *
 * Linux has no portable way for Node to ask the kernel to kill a child when its parent dies
 * (prctl(PR_SET_PDEATHSIG) needs native code and reaches only the direct child; PID
 * namespaces are refused under systemd's RestrictNamespaces= and in default containers).
 * What always works is a file descriptor: the kernel closes every descriptor of a process
 * that dies, however it dies. So the server runs under a tiny /bin/sh supervisor that
 *
 * - leads a new session and process group (spawn `detached`), so the server and every
 *   process it starts can be signalled at once with kill(-pgid);
 * - holds one end of a socket pair whose other end only Latchkey holds (fd 3), and waits in
 *   `read` on it. `read` returns at end of file, which happens exactly when Latchkey is gone;
 *   then it sends SIGTERM to the group and, 3 s later, SIGKILL.
 *
 * A server cannot defeat this by ignoring its stdin, as an "exit on stdin EOF" convention
 * would allow; only a server that deliberately leaves its process group (setsid) escapes.
 */
const SUPERVISOR = `
# POSIX gives an asynchronous command /dev/null as stdin (XCU 2.9.3): keep the pipe as fd 4.
exec 4<&0
# sh exports PWD; the server gets only the variables the owner configured (plus PATH, HOME).
unset PWD OLDPWD
"$@" <&4 3<&- 4<&- &
child=$!
exec 4<&-
# Set after the server started, so the server keeps the default action: this shell outlives
# a SIGTERM to the group and reports the server's own exit. The watcher inherits it.
trap '' TERM
# The watcher: read returns at end of file on fd 3, which is when Latchkey is gone, however it died.
(
  read -r _ <&3
  kill -TERM 0
  sleep 3
  kill -KILL 0
) </dev/null >/dev/null 2>&1 &
exec 3<&-
# The watcher is left running: if Latchkey is alive it kills the group when this shell exits;
# if Latchkey is gone, the watcher is what still has to kill the server's children.
wait "$child"
`;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * What an exit means, for people: the supervisor exits with the shell's codes, 127 and 126
 * for a command that could not run, 128+n for a server killed by signal n.
 */
export function describeExit(exit: Exit): string {
  const signal = exit.signal ?? (exit.code !== null && exit.code > 128 ? signalName(exit.code - 128) : undefined);
  return exit.code === 127 ? 'could not start (command not found: check "command" and PATH)'
    : exit.code === 126 ? 'could not start ("command" is not executable)'
    : signal !== undefined ? `was killed by ${signal}`
    : `exited with code ${exit.code ?? 'unknown'}`;
}

function signalName(signal: number): string {
  return Object.entries(constants.signals).find(([, n]) => n === signal)?.[0] ?? `signal ${signal}`;
}

/** PATH and HOME of Latchkey's environment: the only variables of its own a child may get. */
export interface BaseEnv {
  PATH?: string;
  HOME?: string;
}

/** Picks PATH and HOME out of an environment, and nothing else. */
export function baseEnvOf(env: Record<string, string | undefined>): BaseEnv {
  return { ...(env.PATH !== undefined ? { PATH: env.PATH } : {}), ...(env.HOME !== undefined ? { HOME: env.HOME } : {}) };
}

/**
 * A child's whole environment: its configured `env` plus PATH and HOME (an `env` entry wins).
 * Never Latchkey's own variables: not the PIN, not the introspection secret.
 */
export function childEnv(base: BaseEnv, configured: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  if (base.PATH !== undefined) env.PATH = base.PATH;
  if (base.HOME !== undefined) env.HOME = base.HOME;
  return Object.assign(env, configured);
}

export interface SupervisedProcess {
  /** The supervisor's pid, which is also the process group id of everything it runs. */
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves when the supervisor has exited (the server's exit code, 128+n for signal n). */
  readonly exited: Promise<Exit>;
  /** SIGTERM to the whole group, SIGKILL to what is left after `graceMs`. */
  terminate(graceMs: number): Promise<void>;
}

export interface SuperviseOptions {
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  cwd?: string;
}

/** Starts the command under the supervisor; rejects when it cannot start at all (e.g. no such cwd). */
export function superviseProcess(options: SuperviseOptions): Promise<SupervisedProcess> {
  const child = spawn('/bin/sh', ['-c', SUPERVISOR, 'latchkey-gateway', options.command, ...options.args], {
    detached: true,
    env: options.env,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise<SupervisedProcess>((resolve, reject) => {
    child.once('error', reject);
    child.once('spawn', () => {
      const pid = child.pid;
      const [stdin, stdout, stderr, lifeline] = child.stdio;
      if (pid === undefined || !stdin || !stdout || !stderr || !lifeline) {
        reject(new Error('the child process has no pid or pipes'));
        return;
      }
      const killGroup = (signal: NodeJS.Signals): void => {
        try {
          process.kill(-pid, signal);
        } catch {
          // ESRCH: every process of the group has exited.
        }
      };
      stdin.on('error', () => undefined); // EPIPE when the server exits: seen at 'exit'
      // Latchkey's end of the lifeline is never read or written: it only has to stay open,
      // without keeping Latchkey's event loop alive.
      (lifeline as { unref?: () => void }).unref?.();
      void exited.then(() => {
        // The server may have left children behind in its group.
        killGroup('SIGKILL');
        lifeline.destroy();
      });
      resolve({
        pid,
        stdin,
        stdout,
        stderr,
        exited,
        terminate: async (graceMs: number): Promise<void> => {
          killGroup('SIGTERM');
          let timer: NodeJS.Timeout | undefined;
          const grace = new Promise<void>((done) => {
            timer = setTimeout(done, graceMs);
          });
          await Promise.race([exited, grace]);
          clearTimeout(timer);
          killGroup('SIGKILL');
          await exited;
        },
      });
    });
  });
}

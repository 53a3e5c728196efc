import dotenv from 'dotenv';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs as parseArgsOfNode } from 'node:util';

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Reads a secret: without echo on a terminal, else the first line of standard input. */
  readSecret(prompt: string): Promise<string>;
  /** Whether standard input is a terminal (to ask for confirmation). */
  interactive: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Splits `--name value` / `--flag` options from positional arguments (node:util's parseArgs);
 * an unknown option or a missing value is a UsageError.
 */
export function parseArgs(
  args: string[],
  spec: { values?: string[]; flags?: string[] },
): { positional: string[]; values: Record<string, string>; flags: Set<string> } {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const name of spec.values ?? []) options[name] = { type: 'string' };
  for (const name of spec.flags ?? []) options[name] = { type: 'boolean' };
  let parsed: ReturnType<typeof parseArgsOfNode>;
  try {
    parsed = parseArgsOfNode({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? 'invalid arguments');
  }
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string') values[name] = value;
    else if (value === true) flags.add(name);
  }
  return { positional: parsed.positionals, values, flags };
}

/**
 * The environment a command sees. With --env-file the file wins over the shell, as it does
 * for systemd's EnvironmentFile=, so `latchkey doctor --env-file /etc/latchkey/latchkey.env`
 * checks what the service gets. Without it, `.env` in the current directory fills in what
 * the shell does not set, exactly as the daemon reads it.
 */
export function loadEnv(io: CliIo, envFile: string | undefined): Record<string, string | undefined> {
  if (envFile !== undefined) {
    const file = path.resolve(io.cwd, envFile);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read the env file ${file}: ${(err as Error).message}`);
    }
    return { ...io.env, ...dotenv.parse(text) };
  }
  try {
    return { ...dotenv.parse(readFileSync(path.join(io.cwd, '.env'), 'utf8')), ...io.env };
  } catch {
    return { ...io.env };
  }
}

/** Where the daemon of this config listens, as a URL this machine can call. */
export function localBaseUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/** Node's fetch says only "fetch failed"; the cause (ECONNREFUSED, ENOTFOUND, ...) is what helps. */
export function fetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

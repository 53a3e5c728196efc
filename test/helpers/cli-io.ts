import type { CliIo } from '../../src/cli/io.js';

export interface CapturedIo extends CliIo {
  stdout: string[];
  stderr: string[];
  text(): string;
}

/** A CliIo that records what a command prints and answers secrets from a list. */
export function captureIo(options: { env?: Record<string, string | undefined>; cwd?: string; secrets?: string[]; interactive?: boolean } = {}): CapturedIo {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const secrets = [...(options.secrets ?? [])];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    readSecret: async () => secrets.shift() ?? '',
    interactive: options.interactive ?? false,
    text: () => stdout.join('') + stderr.join(''),
  };
}

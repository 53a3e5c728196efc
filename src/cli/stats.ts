import { ControlUnavailableError, callControl } from './control-client.js';
import { fetchFailure, type CliIo } from './io.js';
import { printStats } from './owner-commands.js';

export interface StatsSource {
  /** The control socket of a daemon on this machine: counts, uptime and version. */
  socket: string | undefined;
  /** The daemon's HTTP base URL: counts, plus uptime and version when `secret` is right. */
  url: string;
  /** OAUTH_INTROSPECTION_SECRET, if this environment has it. */
  secret: string | undefined;
}

/**
 * `latchkey stats`: the running daemon's counts, as a table or (--json) as served. Asked over
 * the control socket when there is one (no --url), else over HTTP at /oauth/stats.
 */
export async function stats(io: CliIo, source: StatsSource, json: boolean): Promise<number> {
  let body: Record<string, unknown> | undefined;
  if (source.socket !== undefined) {
    try {
      body = (await callControl(source.socket, 'GET', '/v1/stats')) as Record<string, unknown>;
    } catch (err) {
      if (!(err instanceof ControlUnavailableError)) throw err;
    }
  }
  if (body === undefined) {
    try {
      const res = await fetch(`${source.url}/oauth/stats`, {
        signal: AbortSignal.timeout(5000),
        headers: source.secret ? { authorization: `Bearer ${source.secret}` } : {},
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      io.err(`latchkey stats: no answer from ${source.url} (${fetchFailure(err)}). Is Latchkey running? Check PORT and HOST, or pass --url.\n`);
      return 1;
    }
  }
  if (json) io.out(`${JSON.stringify(body)}\n`);
  else printStats(io, body);
  return 0;
}

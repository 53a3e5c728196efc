import { formatDuration } from '../clock.js';
import { fetchFailure, type CliIo } from './io.js';

interface Stats {
  clients: number;
  authorization_codes: number;
  access_tokens: number;
  refresh_tokens: number;
  uptime_seconds: number;
  version: string;
}


/** `latchkey stats`: the running daemon's /oauth/stats, as a table or (--json) as served. */
export async function stats(io: CliIo, baseUrl: string, json: boolean): Promise<number> {
  let body: Stats;
  try {
    const res = await fetch(`${baseUrl}/oauth/stats`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = (await res.json()) as Stats;
  } catch (err) {
    io.err(`latchkey stats: no answer from ${baseUrl} (${fetchFailure(err)}). Is Latchkey running? Check PORT and HOST, or pass --url.\n`);
    return 1;
  }
  if (json) {
    io.out(`${JSON.stringify(body)}\n`);
    return 0;
  }
  const rows: [string, string][] = [
    ['registered clients', String(body.clients)],
    ['pending codes', String(body.authorization_codes)],
    ['live access tokens', String(body.access_tokens)],
    ['live refresh tokens', String(body.refresh_tokens)],
    ['uptime', formatDuration(body.uptime_seconds * 1000)],
    ['version', body.version],
  ];
  for (const [label, value] of rows) io.out(`${label.padEnd(22)}${value}\n`);
  return 0;
}

import type { AuditEvent } from '../store/types.js';
import { callControl } from './control-client.js';
import { UsageError, type CliIo } from './io.js';

/** `latchkey audit`: the audit log of the running daemon, from its control socket. */

/** An event as the control API sends it: the stored event, and who and what for people. */
type AuditRow = AuditEvent & { who: string; text: string };

/** At most this many events are printed, the newest. */
const MAX_EVENTS = 10_000;

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * `--since`: a duration back from now (`30m`, `24h`, `7d`, `2w`) or an ISO 8601 date or
 * time (`2026-01-31`, `2026-01-31T12:00:00Z`). Anything else is a usage error.
 */
export function parseSince(value: string, now: number): number {
  const duration = /^(\d{1,6})([mhdw])$/.exec(value.trim());
  if (duration?.[1] !== undefined && duration[2] !== undefined) return now - Number(duration[1]) * (UNITS[duration[2]] ?? 0);
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const at = Date.parse(value.trim());
    if (Number.isFinite(at)) return at;
  }
  throw new UsageError(`--since "${value}" is neither a duration (30m, 24h, 7d, 2w) nor an ISO date (2026-01-31)`);
}

const stamp = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export async function auditCommand(io: CliIo, socket: string, since: string | undefined, json: boolean, now: number = Date.now()): Promise<number> {
  const from = since === undefined ? undefined : parseSince(since, now);
  const query = new URLSearchParams({ limit: String(MAX_EVENTS), ...(from !== undefined ? { since: String(from) } : {}) });
  const { events } = (await callControl(socket, 'GET', `/v1/audit?${query.toString()}`)) as { events: AuditRow[] };
  // The daemon answers newest first; a log reads oldest first, the newest last, next to the prompt.
  const oldestFirst = [...events].reverse();
  if (json) {
    for (const { who: _who, text: _text, ...event } of oldestFirst) io.out(`${JSON.stringify(event)}\n`);
    return 0;
  }
  if (oldestFirst.length === 0) {
    io.out(since === undefined ? 'The audit log is empty.\n' : `No event since ${stamp(from ?? now)}.\n`);
    return 0;
  }
  for (const e of oldestFirst) io.out(`${stamp(e.at)}  ${e.type.padEnd(17)} ${e.text}${e.ip !== undefined ? `  [${e.ip}]` : ''}\n`);
  if (events.length >= MAX_EVENTS) io.out(`(only the newest ${MAX_EVENTS} events; older ones stay in the log: one JSON line each in the data directory's audit/ day files, or the audit_events table on PostgreSQL)\n`);
  return 0;
}

import { formatDuration, formatTime } from '../clock.js';
import { callControl } from './control-client.js';
import type { CliIo } from './io.js';

/**
 * The owner's commands that act on the running daemon through its control socket:
 * `latchkey clients`, `latchkey grants`, `latchkey revoke`, `latchkey unlock`.
 */

interface ClientRow {
  client_id: string;
  name: string;
  returns_to: string[];
  registered_at?: number;
  last_used_at?: number;
  live_grants: number;
}

interface GrantRow {
  grant_id: string;
  client_id: string;
  client_name: string;
  scope: string;
  resource: string;
  issued_at: number;
  expires_at: number;
  refreshable: boolean;
  approved_by?: { subject: string; email?: string; name?: string };
}

const when = (ms: number | undefined): string => (ms === undefined ? '-' : formatTime(ms));

function table(io: CliIo, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  io.out(`${line(header)}\n`);
  for (const row of rows) io.out(`${line(row)}\n`);
}

export async function listClients(io: CliIo, socket: string, json: boolean): Promise<number> {
  const { clients } = (await callControl(socket, 'GET', '/v1/clients')) as { clients: ClientRow[] };
  if (json) {
    io.out(`${JSON.stringify(clients)}\n`);
    return 0;
  }
  if (clients.length === 0) {
    io.out('No client is registered.\n');
    return 0;
  }
  table(
    io,
    ['CLIENT ID', 'NAME', 'GRANTS', 'LAST USED', 'RETURNS TO'],
    clients.map((c) => [c.client_id, c.name, String(c.live_grants), when(c.last_used_at), c.returns_to.join(', ')]),
  );
  return 0;
}

export async function listGrants(io: CliIo, socket: string, clientId: string | undefined, json: boolean): Promise<number> {
  const query = clientId === undefined ? '' : `?client=${encodeURIComponent(clientId)}`;
  const { grants } = (await callControl(socket, 'GET', `/v1/grants${query}`)) as { grants: GrantRow[] };
  if (json) {
    io.out(`${JSON.stringify(grants)}\n`);
    return 0;
  }
  if (grants.length === 0) {
    io.out('No live grant.\n');
    return 0;
  }
  table(
    io,
    ['GRANT ID', 'APP', 'SCOPE', 'EXPIRES', 'APPROVED BY', 'RESOURCE'],
    grants.map((g) => [
      g.grant_id,
      g.client_name,
      g.scope,
      `${when(g.expires_at)}${g.refreshable ? ' (renews)' : ''}`,
      g.approved_by === undefined ? 'PIN' : (g.approved_by.email ?? g.approved_by.name ?? g.approved_by.subject),
      g.resource,
    ]),
  );
  return 0;
}

/** Revokes grants by id, every grant of one client, or everything one person approved (their subject). */
export async function revoke(io: CliIo, socket: string, target: { grantIds: string[] } | { clientId: string } | { subject: string }): Promise<number> {
  const body = 'clientId' in target ? { client_id: target.clientId } : 'subject' in target ? { subject: target.subject } : { grant_ids: target.grantIds };
  const { revoked } = (await callControl(socket, 'POST', '/v1/grants/revoke', body)) as { revoked: number };
  io.out(revoked === 0 ? 'Nothing to revoke: no such live grant.\n' : `Revoked ${revoked} grant${revoked === 1 ? '' : 's'}: their tokens no longer work.\n`);
  return revoked === 0 ? 1 : 0;
}

export async function deleteClients(io: CliIo, socket: string, clientIds: string[]): Promise<number> {
  const { deleted } = (await callControl(socket, 'POST', '/v1/clients/delete', { client_ids: clientIds })) as { deleted: number };
  io.out(deleted === 0 ? 'Nothing deleted: no such client.\n' : `Deleted ${deleted} client${deleted === 1 ? '' : 's'} and everything issued to ${deleted === 1 ? 'it' : 'them'}.\n`);
  return deleted === 0 ? 1 : 0;
}

export async function unlock(io: CliIo, socket: string): Promise<number> {
  const { cleared } = (await callControl(socket, 'POST', '/v1/unlock')) as { cleared: number };
  io.out(`PIN lockouts lifted (${cleared} recent wrong PIN${cleared === 1 ? '' : 's'} forgotten).\n`);
  return 0;
}

/** The stats table, from the control socket (uptime and version included) or from /oauth/stats. */
export function printStats(io: CliIo, body: Record<string, unknown>): void {
  const rows: [string, string][] = [
    ['registered clients', String(body.clients)],
    ['pending codes', String(body.authorization_codes)],
    ['live access tokens', String(body.access_tokens)],
    ['live refresh tokens', String(body.refresh_tokens)],
  ];
  if (typeof body.uptime_seconds === 'number') rows.push(['uptime', formatDuration(body.uptime_seconds * 1000)]);
  if (typeof body.version === 'string') rows.push(['version', body.version]);
  for (const [label, value] of rows) io.out(`${label.padEnd(22)}${value}\n`);
}

export async function forgetDevices(io: CliIo, socket: string): Promise<number> {
  const { forgotten } = (await callControl(socket, 'POST', '/v1/devices/forget')) as { forgotten: number };
  io.out(`Forgot ${forgotten} known browser${forgotten === 1 ? '' : 's'}: each must enter the PIN once more to get a budget of its own.\n`);
  return 0;
}

import type pg from 'pg';
import { auditEventSchema, type AuditEvent } from '../records.js';
import type { AuditQuery, AuditStore } from '../types.js';
import { rethrow } from './pool.js';
import { auditFromRow, json, type AuditRow } from './rows.js';

/** The audit log on PostgreSQL (table audit_events): one row per event, durable once committed. */
export class PostgresAuditLog implements AuditStore {
  constructor(private readonly pool: pg.Pool) {}

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      return rethrow(err);
    }
  }

  async append(event: AuditEvent): Promise<void> {
    if (!auditEventSchema.safeParse(event).success || !Number.isFinite(event.at)) {
      throw new TypeError('not an audit event: `at` and `type` are required, `detail` holds strings, numbers, booleans or string lists');
    }
    await this.query(
      'INSERT INTO audit_events (at, type, actor, subject, client_id, client_name, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)',
      [event.at, event.type, event.actor ?? null, event.subject ?? null, event.clientId ?? null, event.clientName ?? null, event.ip ?? null, json(event.detail)],
    );
  }

  async list(query: AuditQuery): Promise<AuditEvent[]> {
    const filters: string[] = [];
    const values: unknown[] = [];
    if (query.since !== undefined) filters.push(`at >= $${values.push(query.since)}`);
    if (query.until !== undefined) filters.push(`at < $${values.push(query.until)}`);
    if (query.subject !== undefined) filters.push(`subject = $${values.push(query.subject)}`);
    if (query.clientId !== undefined) filters.push(`client_id = $${values.push(query.clientId)}`);
    if (query.type !== undefined) filters.push(`type = $${values.push(query.type)}`);
    const { rows } = await this.query<AuditRow>(
      `SELECT at, type, actor, subject, client_id, client_name, ip, detail FROM audit_events
       ${filters.length > 0 ? `WHERE ${filters.join(' AND ')}` : ''}
       ORDER BY at DESC, id DESC LIMIT $${values.push(query.limit)} OFFSET $${values.push(query.offset ?? 0)}`,
      values,
    );
    return rows.map(auditFromRow);
  }

  async prune(before: number): Promise<number> {
    const { rowCount } = await this.query('DELETE FROM audit_events WHERE at < $1', [before]);
    return rowCount ?? 0;
  }
}

import type pg from 'pg';
import type { Logger } from 'pino';
import type { AccessTokenRecord, ClientRecord, CodeRecord, RefreshTokenRecord } from '../records.js';
import type { ClientQuery, ExpiredCounts, GrantQuery, GrantSummary, Store, StoreCounts, StoreHealth } from '../types.js';
import { summarizeGrants } from '../grant-summaries.js';
import { inTransaction, prepared, reasonOf, rethrow, runPrepared } from './pool.js';
import {
  ACCESS_COLUMNS,
  accessFromRow,
  accessParams,
  CLIENT_COLUMNS,
  clientFromRow,
  CODE_COLUMNS,
  codeFromRow,
  json,
  REFRESH_COLUMNS,
  refreshFromRow,
  refreshParams,
  type ClientRow,
  type CodeRow,
  type GrantRow,
  type RefreshRow,
} from './rows.js';

/**
 * The {@link Store} on PostgreSQL. Every change is one SQL statement (or one transaction),
 * durable once PostgreSQL commits it, so several instances can share the database. Each
 * check-and-set is decided by the database under a row lock: `SELECT … FOR UPDATE` of the
 * code or refresh token, then the update and the inserts of the new tokens in the same
 * statement, so of any number of concurrent exchanges on any number of instances exactly
 * one wins. Errors meaning "the database cannot serve now" become StoreUnavailableError.
 */

/** The advisory lock key of the hourly cleanup: one instance at a time runs it. */
export const CLEANUP_LOCK = 7_260_513_002;
/** A last use is recorded at most once a minute per client (it is for the owner's overview). */
const TOUCH_EVERY_MS = 60_000;
/** Clients whose last recorded use this instance remembers, to skip needless updates. */
const TOUCH_MEMORY = 10_000;
/**
 * Grant-wide deletions repeat until a pass finds nothing: a rotation that committed while a
 * pass ran added successors that pass could not see (they were not in its snapshot).
 */
const MAX_SWEEPS = 10;

const ACCESS_INSERT = `INSERT INTO access_tokens (${ACCESS_COLUMNS})`;
const ACCESS_UPSERT = `ON CONFLICT (hash) DO UPDATE SET client_id = EXCLUDED.client_id, grant_id = EXCLUDED.grant_id, scopes = EXCLUDED.scopes,
  resource = EXCLUDED.resource, issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at, approved_by = EXCLUDED.approved_by`;
const REFRESH_INSERT = `INSERT INTO refresh_tokens (${REFRESH_COLUMNS})`;
const REFRESH_UPSERT = `${ACCESS_UPSERT}, rotated_at = EXCLUDED.rotated_at`;
/** The typed placeholders of an access token row starting at $n (ACCESS_COLUMNS order). */
const accessValues = (n: number): string => `$${n}::text, $${n + 1}::text, $${n + 2}::text, $${n + 3}::text[], $${n + 4}::text, $${n + 5}::bigint, $${n + 6}::bigint, $${n + 7}::jsonb`;
/** The typed placeholders of a refresh token row starting at $n (REFRESH_COLUMNS order). */
const refreshValues = (n: number): string =>
  `$${n}::text, $${n + 1}::text, $${n + 2}::text, $${n + 3}::text[], $${n + 4}::text, $${n + 5}::bigint, $${n + 6}::bigint, $${n + 7}::bigint, $${n + 8}::jsonb`;
const NO_REFRESH: unknown[] = Array.from({ length: 9 }, () => null);

/** Deletes the codes and tokens that `where` (over $1) selects, and counts them. */
const deleteGrantRecords = (where: string): string => `
  WITH c AS (DELETE FROM codes WHERE ${where} RETURNING 1),
       a AS (DELETE FROM access_tokens WHERE ${where} RETURNING 1),
       r AS (DELETE FROM refresh_tokens WHERE ${where} RETURNING 1)
  SELECT ((SELECT count(*) FROM c) + (SELECT count(*) FROM a) + (SELECT count(*) FROM r))::int AS n`;

/** See ClientQuery.unapprovedOnly. */
const NEVER_APPROVED = 'WHERE approved_at IS NULL AND last_used_at IS NULL';

export class PostgresStore implements Store {
  private readonly touched = new Map<string, number>();
  private readonly touching = new Set<Promise<void>>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  private query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> {
    return runPrepared<R>(this.pool, text, values);
  }

  /** Runs `statement` again while it deletes something (see MAX_SWEEPS); returns the total. */
  private async sweep(statement: string, values: unknown[]): Promise<number> {
    let total = 0;
    for (let pass = 0; pass < MAX_SWEEPS; pass++) {
      const n = (await this.query<{ n: number }>(statement, values)).rows[0]?.n ?? 0;
      total += n;
      if (n === 0) break;
    }
    return total;
  }

  // ---- clients -------------------------------------------------------------------------

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const { rows } = await this.query<ClientRow>(`SELECT ${CLIENT_COLUMNS} FROM clients WHERE client_id = $1`, [clientId]);
    return rows[0] && clientFromRow(rows[0]);
  }

  async putClient(c: ClientRecord): Promise<void> {
    await this.query(
      `INSERT INTO clients (${CLIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (client_id) DO UPDATE SET client_secret_hash = EXCLUDED.client_secret_hash, issued_at = EXCLUDED.issued_at,
         last_used_at = EXCLUDED.last_used_at, approved_at = EXCLUDED.approved_at, metadata = EXCLUDED.metadata`,
      [c.clientId, c.clientSecretHash ?? null, c.issuedAt, c.lastUsedAt ?? null, c.approvedAt ?? null, JSON.stringify(c.metadata)],
    );
  }

  touchClient(clientId: string, at: number): void {
    const last = this.touched.get(clientId);
    if (last !== undefined && at - last < TOUCH_EVERY_MS) return;
    if (this.touched.size >= TOUCH_MEMORY) this.touched.clear();
    this.touched.set(clientId, at);
    // Not waited for: losing it costs nothing. The condition keeps other instances' updates to one a minute too.
    const update = this.pool
      .query(prepared('UPDATE clients SET last_used_at = $2 WHERE client_id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)', [clientId, at, at - TOUCH_EVERY_MS]))
      .then(
        () => undefined,
        (err: Error & { code?: string }) => this.logger.warn({ errno: err.code, reason: err.message }, 'could not record a client’s last use'),
      )
      .finally(() => this.touching.delete(update));
    this.touching.add(update);
  }

  async markClientApproved(clientId: string, at: number): Promise<void> {
    await this.query('UPDATE clients SET approved_at = $2 WHERE client_id = $1 AND approved_at IS NULL', [clientId, at]);
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return (await this.deleteClients([clientId])) > 0;
  }

  async deleteClients(clientIds: readonly string[]): Promise<number> {
    if (clientIds.length === 0) return 0;
    const { rows } = await this.query<{ gone: string[] }>(
      `WITH gone AS (DELETE FROM clients WHERE client_id = ANY($1::text[]) RETURNING client_id),
            c AS (DELETE FROM codes WHERE client_id IN (SELECT client_id FROM gone)),
            a AS (DELETE FROM access_tokens WHERE client_id IN (SELECT client_id FROM gone)),
            r AS (DELETE FROM refresh_tokens WHERE client_id IN (SELECT client_id FROM gone))
       SELECT coalesce(array_agg(client_id), '{}') AS gone FROM gone`,
      [[...new Set(clientIds)]],
    );
    const gone = rows[0]?.gone ?? [];
    // Tokens an exchange committed meanwhile (outside the statement's snapshot) go too.
    if (gone.length > 0) await this.sweep(deleteGrantRecords('client_id = ANY($1::text[])'), [gone]);
    return gone.length;
  }

  async deleteUnusedClients(registeredBefore: number): Promise<number> {
    // Clients registered before approved_at existed have none even when approved: having
    // been used at /token, or holding a code or a token, shows they were.
    const { rows } = await this.query<{ n: number }>(
      `WITH gone AS (
         DELETE FROM clients k
          WHERE approved_at IS NULL AND last_used_at IS NULL AND issued_at < $1
            AND NOT EXISTS (SELECT 1 FROM codes WHERE client_id = k.client_id)
            AND NOT EXISTS (SELECT 1 FROM access_tokens WHERE client_id = k.client_id)
            AND NOT EXISTS (SELECT 1 FROM refresh_tokens WHERE client_id = k.client_id)
         RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [registeredBefore],
    );
    return rows[0]?.n ?? 0;
  }

  async listClients(query: ClientQuery = {}): Promise<ClientRecord[]> {
    const order = query.newestFirst ? 'DESC' : 'ASC';
    const { rows } = await this.query<ClientRow>(
      `SELECT ${CLIENT_COLUMNS} FROM clients ${query.unapprovedOnly ? NEVER_APPROVED : ''}
       ORDER BY issued_at ${order}, stored_seq ${order} OFFSET $1 LIMIT $2`,
      [query.offset ?? 0, query.limit ?? null],
    );
    return rows.map(clientFromRow);
  }

  async clientCount(query: Pick<ClientQuery, 'unapprovedOnly'> = {}): Promise<number> {
    // All clients: the count the triggers keep (migration 2), not a scan of the table.
    const { rows } = await this.query<{ n: number }>(
      query.unapprovedOnly ? `SELECT count(*)::int AS n FROM clients ${NEVER_APPROVED}` : 'SELECT coalesce(sum(n), 0)::int AS n FROM client_count',
    );
    return rows[0]?.n ?? 0;
  }

  // ---- codes ---------------------------------------------------------------------------

  async putCode(c: CodeRecord): Promise<void> {
    await this.query(
      `INSERT INTO codes (${CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (hash) DO UPDATE SET client_id = EXCLUDED.client_id, grant_id = EXCLUDED.grant_id, redirect_uri = EXCLUDED.redirect_uri,
         code_challenge = EXCLUDED.code_challenge, scopes = EXCLUDED.scopes, resource = EXCLUDED.resource, issued_at = EXCLUDED.issued_at,
         expires_at = EXCLUDED.expires_at, consumed_at = EXCLUDED.consumed_at, approved_by = EXCLUDED.approved_by`,
      [c.hash, c.clientId, c.grantId, c.redirectUri, c.codeChallenge, c.scopes, c.resource, c.issuedAt, c.expiresAt, c.consumedAt ?? null, json(c.approvedBy)],
    );
  }

  async getCode(hash: string, now: number): Promise<CodeRecord | undefined> {
    const { rows } = await this.query<CodeRow>(`SELECT ${CODE_COLUMNS} FROM codes WHERE hash = $1 AND expires_at > $2`, [hash, now]);
    return rows[0] && codeFromRow(rows[0]);
  }

  async consumeCode(
    hash: string,
    now: number,
    issued: { access: AccessTokenRecord; refresh: RefreshTokenRecord | undefined },
  ): Promise<CodeRecord | undefined> {
    // One statement: lock the code's row (a concurrent exchange waits here, then sees it
    // consumed), mark it consumed if still live and unconsumed, and store the tokens only
    // then. `old` is the row as it was before this statement.
    const { rows } = await this.query<CodeRow & { won: boolean }>(
      `WITH old AS (SELECT ${CODE_COLUMNS} FROM codes WHERE hash = $1 FOR UPDATE),
            won AS (UPDATE codes c SET consumed_at = $2 FROM old
                     WHERE c.hash = old.hash AND old.expires_at > $2 AND old.consumed_at IS NULL RETURNING c.hash),
            a AS (${ACCESS_INSERT} SELECT ${accessValues(3)} FROM won ${ACCESS_UPSERT}),
            r AS (${REFRESH_INSERT} SELECT ${refreshValues(11)} FROM won WHERE $11::text IS NOT NULL ${REFRESH_UPSERT})
       SELECT old.*, EXISTS (SELECT 1 FROM won) AS won FROM old`,
      [hash, now, ...accessParams(issued.access), ...(issued.refresh ? refreshParams(issued.refresh) : NO_REFRESH)],
    );
    const row = rows[0];
    if (!row || row.expires_at <= now) return undefined;
    return codeFromRow(row);
  }

  // ---- tokens --------------------------------------------------------------------------

  async putTokens(access: AccessTokenRecord, refresh: RefreshTokenRecord | undefined): Promise<void> {
    await this.query(
      `WITH a AS (${ACCESS_INSERT} VALUES (${accessValues(1)}) ${ACCESS_UPSERT})
       ${REFRESH_INSERT} SELECT ${refreshValues(9)} WHERE $9::text IS NOT NULL ${REFRESH_UPSERT}`,
      [...accessParams(access), ...(refresh ? refreshParams(refresh) : NO_REFRESH)],
    );
  }

  async getAccessToken(hash: string, now: number): Promise<AccessTokenRecord | undefined> {
    const { rows } = await this.query<GrantRow>(`SELECT ${ACCESS_COLUMNS} FROM access_tokens WHERE hash = $1 AND expires_at > $2`, [hash, now]);
    return rows[0] && accessFromRow(rows[0]);
  }

  async getRefreshToken(hash: string, now: number): Promise<RefreshTokenRecord | undefined> {
    const { rows } = await this.query<RefreshRow>(`SELECT ${REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = $1 AND expires_at > $2`, [hash, now]);
    return rows[0] && refreshFromRow(rows[0]);
  }

  async rotateRefreshToken(
    hash: string,
    now: number,
    retainUntil: number,
    successors: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
  ): Promise<RefreshTokenRecord | undefined> {
    // As consumeCode: the row lock makes concurrent refreshes with one token wait, and only
    // the first finds it unrotated. The rotated token is kept until retainUntil (or its own
    // expiry, if sooner) so later reuse is recognised.
    const { rows } = await this.query<RefreshRow & { won: boolean }>(
      `WITH old AS (SELECT ${REFRESH_COLUMNS} FROM refresh_tokens WHERE hash = $1 FOR UPDATE),
            won AS (UPDATE refresh_tokens t SET rotated_at = $2, expires_at = LEAST(old.expires_at, $3) FROM old
                     WHERE t.hash = old.hash AND old.expires_at > $2 AND old.rotated_at IS NULL RETURNING t.hash),
            a AS (${ACCESS_INSERT} SELECT ${accessValues(4)} FROM won ${ACCESS_UPSERT}),
            r AS (${REFRESH_INSERT} SELECT ${refreshValues(12)} FROM won ${REFRESH_UPSERT})
       SELECT old.*, EXISTS (SELECT 1 FROM won) AS won FROM old`,
      [hash, now, retainUntil, ...accessParams(successors.access), ...refreshParams(successors.refresh)],
    );
    const row = rows[0];
    if (!row || row.expires_at <= now) return undefined;
    return refreshFromRow(row);
  }

  async deleteAccessToken(hash: string): Promise<boolean> {
    const { rowCount } = await this.query('DELETE FROM access_tokens WHERE hash = $1', [hash]);
    return (rowCount ?? 0) > 0;
  }

  revokeGrant(grantId: string): Promise<number> {
    return this.sweep(deleteGrantRecords('grant_id = $1'), [grantId]);
  }

  revokeGrantsBySubject(subject: string): Promise<number> {
    return this.sweep(deleteGrantRecords("approved_by ->> 'subject' = $1"), [subject]);
  }

  async listGrants(now: number, query: GrantQuery = {}): Promise<GrantSummary[]> {
    const filters = ['expires_at > $1'];
    const values: unknown[] = [now];
    if (query.clientId !== undefined) filters.push(`client_id = $${values.push(query.clientId)}`);
    if (query.subject !== undefined) filters.push(`approved_by ->> 'subject' = $${values.push(query.subject)}`);
    const where = filters.join(' AND ');
    const { rows } = await this.query<Omit<GrantRow, 'hash'> & { access: boolean }>(
      `SELECT grant_id, client_id, scopes, resource, issued_at, expires_at, approved_by, false AS access
         FROM refresh_tokens WHERE ${where} AND rotated_at IS NULL
       UNION ALL
       SELECT grant_id, client_id, scopes, resource, issued_at, expires_at, approved_by, true AS access
         FROM access_tokens WHERE ${where}
       ORDER BY issued_at, grant_id`,
      values,
    );
    return summarizeGrants(
      rows.map((t) => ({
        grantId: t.grant_id,
        clientId: t.client_id,
        scopes: t.scopes,
        resource: t.resource,
        issuedAt: t.issued_at,
        expiresAt: t.expires_at,
        approvedBy: t.approved_by ?? undefined,
        access: t.access,
      })),
    );
  }

  // ---- housekeeping --------------------------------------------------------------------

  async deleteExpired(now: number): Promise<ExpiredCounts> {
    try {
      return await inTransaction(this.pool, async (client) => {
        // One instance at a time; the others skip this round (their next one comes an interval later).
        const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [CLEANUP_LOCK]);
        if (!lock[0]?.locked) return { codes: 0, accessTokens: 0, refreshTokens: 0, skipped: true };
        const { rows } = await client.query<ExpiredCounts>(
          `WITH c AS (DELETE FROM codes WHERE expires_at <= $1 RETURNING 1),
                a AS (DELETE FROM access_tokens WHERE expires_at <= $1 RETURNING 1),
                r AS (DELETE FROM refresh_tokens WHERE expires_at <= $1 RETURNING 1),
                k AS (DELETE FROM kv_entries WHERE expires_at <= $1),
                w AS (DELETE FROM counters WHERE reset_at <= $1)
           SELECT (SELECT count(*) FROM c)::int AS "codes", (SELECT count(*) FROM a)::int AS "accessTokens", (SELECT count(*) FROM r)::int AS "refreshTokens"`,
          [now],
        );
        return rows[0] ?? { codes: 0, accessTokens: 0, refreshTokens: 0 };
      });
    } catch (err) {
      return rethrow(err);
    }
  }

  async counts(now: number): Promise<StoreCounts> {
    const { rows } = await this.query<StoreCounts>(
      `SELECT (SELECT count(*) FROM clients)::int AS "clients",
              (SELECT count(*) FROM codes WHERE expires_at > $1 AND consumed_at IS NULL)::int AS "codes",
              (SELECT count(*) FROM access_tokens WHERE expires_at > $1)::int AS "accessTokens",
              (SELECT count(*) FROM refresh_tokens WHERE expires_at > $1 AND rotated_at IS NULL)::int AS "refreshTokens"`,
      [now],
    );
    return rows[0] ?? { clients: 0, codes: 0, accessTokens: 0, refreshTokens: 0 };
  }

  async health(): Promise<StoreHealth> {
    try {
      await this.pool.query('SELECT 1');
      return { ok: true };
    } catch (err) {
      return { ok: false, error: reasonOf(err), detail: (err as Error).message };
    }
  }

  /** Waits for the last-use updates under way; the pool is closed by the backend. */
  async close(): Promise<void> {
    await Promise.all([...this.touching]);
  }
}

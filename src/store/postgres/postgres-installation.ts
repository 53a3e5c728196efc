import type pg from 'pg';
import { installationCounts, type Installation, type InstallationCounts } from '../installation.js';
import { inTransaction } from './pool.js';
import { accessFromRow, ACCESS_COLUMNS, auditFromRow, CLIENT_COLUMNS, clientFromRow, CODE_COLUMNS, codeFromRow, REFRESH_COLUMNS, refreshFromRow, type AuditRow, type ClientRow, type CodeRow, type GrantRow, type RefreshRow } from './rows.js';

/**
 * A whole installation in PostgreSQL, read and written in one transaction each, for
 * `latchkey export` and `latchkey import`: the export sees one point in time however busy the
 * instances are, and an import lands entirely or not at all.
 */

/** Rows sent per statement on import: one JSON parameter each, well below any size limit. */
const BATCH = 1_000;

/** Everything, as of one snapshot (REPEATABLE READ), in registration and issue order. */
export async function readPostgresInstallation(pool: pg.Pool): Promise<Installation> {
  return inTransaction(
    pool,
    async (client) => {
      const clients = await client.query<ClientRow>(`SELECT ${CLIENT_COLUMNS} FROM clients ORDER BY issued_at, stored_seq`);
      const codes = await client.query<CodeRow>(`SELECT ${CODE_COLUMNS} FROM codes ORDER BY issued_at, hash`);
      const access = await client.query<GrantRow>(`SELECT ${ACCESS_COLUMNS} FROM access_tokens ORDER BY issued_at, hash`);
      const refresh = await client.query<RefreshRow>(`SELECT ${REFRESH_COLUMNS} FROM refresh_tokens ORDER BY issued_at, hash`);
      const kv = await client.query<{ namespace: string; key: string; value: string; expires_at: number | null }>(
        'SELECT namespace, key, value, expires_at FROM kv_entries ORDER BY namespace COLLATE "C", key COLLATE "C"',
      );
      const audit = await client.query<AuditRow>('SELECT at, type, actor, subject, client_id, client_name, ip, detail FROM audit_events ORDER BY at, id');
      const key = await client.query<{ key: Buffer }>('SELECT key FROM consent_key WHERE id = 1');
      return {
        clients: clients.rows.map(clientFromRow),
        codes: codes.rows.map(codeFromRow),
        accessTokens: access.rows.map(accessFromRow),
        refreshTokens: refresh.rows.map(refreshFromRow),
        kv: kv.rows.map((r) => ({ namespace: r.namespace, key: r.key, value: r.value, expiresAt: r.expires_at })),
        audit: audit.rows.map(auditFromRow),
        consentKey: key.rows[0]?.key,
      };
    },
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
}

/** How much the database holds, by kind (the consent key and the counters are not counted). */
export async function postgresCounts(db: pg.Pool | pg.PoolClient): Promise<InstallationCounts> {
  const { rows } = await db.query<InstallationCounts>(
    `SELECT (SELECT count(*) FROM clients)::int AS "clients", (SELECT count(*) FROM codes)::int AS "codes",
            (SELECT count(*) FROM access_tokens)::int AS "accessTokens", (SELECT count(*) FROM refresh_tokens)::int AS "refreshTokens",
            (SELECT count(*) FROM kv_entries)::int AS "kv", (SELECT count(*) FROM audit_events)::int AS "audit"`,
  );
  const counts = rows[0];
  if (!counts) throw new Error('the counts query returned no row');
  return counts;
}

/** Other Latchkey processes connected to this database now (daemons, or another import). */
export async function otherLatchkeySessions(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'latchkey' AND pid <> pg_backend_pid()",
  );
  return rows[0]?.n ?? 0;
}

/**
 * Replaces everything in the database with `data`, in one transaction: the tables are
 * emptied (the counters too), then filled; the consent key is replaced when `data` has one.
 * The caller has checked that nothing is lost (an empty database, or --force).
 */
export async function writePostgresInstallation(pool: pg.Pool, data: Installation): Promise<InstallationCounts> {
  return inTransaction(pool, async (client) => {
    const batches = async <T>(rows: readonly T[], statement: string, toJson: (row: T) => unknown): Promise<void> => {
      for (let i = 0; i < rows.length; i += BATCH) await client.query(statement, [JSON.stringify(rows.slice(i, i + BATCH).map(toJson))]);
    };
    await client.query('TRUNCATE clients, codes, access_tokens, refresh_tokens, kv_entries, counters, audit_events RESTART IDENTITY');
    // Registration order is kept: stored_seq follows the order of insertion.
    await batches(
      data.clients,
      `INSERT INTO clients (${CLIENT_COLUMNS})
       SELECT client_id, client_secret_hash, issued_at, last_used_at, approved_at, metadata::json
         FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (client_id text, client_secret_hash text, issued_at bigint, last_used_at bigint, approved_at bigint, metadata text))
              WITH ORDINALITY AS x(client_id, client_secret_hash, issued_at, last_used_at, approved_at, metadata, n)
        ORDER BY n`,
      // The metadata travels as its text: the json column keeps it exactly as registered.
      (c) => ({ client_id: c.clientId, client_secret_hash: c.clientSecretHash, issued_at: c.issuedAt, last_used_at: c.lastUsedAt, approved_at: c.approvedAt, metadata: JSON.stringify(c.metadata) }),
    );
    await batches(
      data.codes,
      `INSERT INTO codes (${CODE_COLUMNS}) SELECT ${CODE_COLUMNS} FROM jsonb_to_recordset($1::jsonb)
         AS x(hash text, client_id text, grant_id text, redirect_uri text, code_challenge text, scopes text[], resource text, issued_at bigint, expires_at bigint, consumed_at bigint, approved_by jsonb)`,
      (c) => ({
        hash: c.hash,
        client_id: c.clientId,
        grant_id: c.grantId,
        redirect_uri: c.redirectUri,
        code_challenge: c.codeChallenge,
        scopes: c.scopes,
        resource: c.resource,
        issued_at: c.issuedAt,
        expires_at: c.expiresAt,
        consumed_at: c.consumedAt,
        approved_by: c.approvedBy,
      }),
    );
    const grantColumns = 'hash text, client_id text, grant_id text, scopes text[], resource text, issued_at bigint, expires_at bigint, approved_by jsonb';
    await batches(
      data.accessTokens,
      `INSERT INTO access_tokens (${ACCESS_COLUMNS}) SELECT ${ACCESS_COLUMNS} FROM jsonb_to_recordset($1::jsonb) AS x(${grantColumns})`,
      (t) => ({ hash: t.hash, client_id: t.clientId, grant_id: t.grantId, scopes: t.scopes, resource: t.resource, issued_at: t.issuedAt, expires_at: t.expiresAt, approved_by: t.approvedBy }),
    );
    await batches(
      data.refreshTokens,
      `INSERT INTO refresh_tokens (${REFRESH_COLUMNS}) SELECT ${REFRESH_COLUMNS} FROM jsonb_to_recordset($1::jsonb) AS x(${grantColumns}, rotated_at bigint)`,
      (t) => ({
        hash: t.hash,
        client_id: t.clientId,
        grant_id: t.grantId,
        scopes: t.scopes,
        resource: t.resource,
        issued_at: t.issuedAt,
        expires_at: t.expiresAt,
        rotated_at: t.rotatedAt,
        approved_by: t.approvedBy,
      }),
    );
    await batches(
      data.kv,
      'INSERT INTO kv_entries (namespace, key, value, expires_at) SELECT namespace, key, value, expires_at FROM jsonb_to_recordset($1::jsonb) AS x(namespace text, key text, value text, expires_at bigint)',
      (e) => ({ namespace: e.namespace, key: e.key, value: e.value, expires_at: e.expiresAt }),
    );
    // In the order given (oldest first): events of the same instant keep their order.
    await batches(
      data.audit,
      `INSERT INTO audit_events (at, type, actor, subject, client_id, client_name, ip, detail)
       SELECT at, type, actor, subject, client_id, client_name, ip, detail
         FROM ROWS FROM (jsonb_to_recordset($1::jsonb) AS (at bigint, type text, actor text, subject text, client_id text, client_name text, ip text, detail jsonb))
              WITH ORDINALITY AS x(at, type, actor, subject, client_id, client_name, ip, detail, n)
        ORDER BY n`,
      (e) => ({ at: e.at, type: e.type, actor: e.actor, subject: e.subject, client_id: e.clientId, client_name: e.clientName, ip: e.ip, detail: e.detail }),
    );
    if (data.consentKey) {
      await client.query('INSERT INTO consent_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key, created_at = now()', [data.consentKey]);
    }
    // Checked before it counts: anything missing and the whole import is rolled back.
    const written = await postgresCounts(client);
    const expected = installationCounts(data);
    for (const kind of Object.keys(expected) as (keyof InstallationCounts)[]) {
      if (written[kind] !== expected[kind]) throw new Error(`the import would hold ${written[kind]} ${kind}, not ${expected[kind]}`);
    }
    return written;
  });
}

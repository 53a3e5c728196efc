import { createHash } from 'node:crypto';
import pg from 'pg';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { CLEANUP_LOCK } from '../../src/store/postgres/postgres-store.js';
import { StoreUnavailableError, type AccessTokenRecord, type CodeRecord } from '../../src/store/types.js';
import { useTestPostgres } from '../helpers/use-test-postgres.js';
import { silentLogger } from '../helpers/unit-context.js';

/**
 * What only the PostgreSQL backend has to promise, beyond the contract: a slow or locked
 * database refuses a request instead of hanging it, and the hourly cleanup runs on one
 * instance at a time.
 */

const NOW = Date.UTC(2026, 0, 1);
const hash = (raw: string): string => createHash('sha256').update(raw).digest('base64url');
const code = (raw: string, expiresAt = NOW + 600_000): CodeRecord => ({
  hash: hash(raw),
  clientId: 'c',
  grantId: `g-${raw}`,
  redirectUri: 'https://claude.ai/api/mcp/auth_callback',
  codeChallenge: 'x',
  scopes: ['mcp'],
  resource: 'https://mcp.example.com/mcp',
  issuedAt: NOW,
  expiresAt,
});
const access = (raw: string, expiresAt = NOW + 3_600_000): AccessTokenRecord => ({
  hash: hash(raw),
  clientId: 'c',
  grantId: `g-${raw}`,
  scopes: ['mcp'],
  resource: 'https://mcp.example.com/mcp',
  issuedAt: NOW,
  expiresAt,
});

const db = useTestPostgres();

describe('PostgreSQL backend', () => {
  it('refuses, as unavailable, a change that waits on the database longer than the statement timeout', async () => {
    const url = await db().createDatabase();
    const { backend } = await PostgresBackend.open({ url, logger: silentLogger(), random: cryptoRandom, statementTimeoutMs: 300 });
    await backend.store.putCode(code('held'));
    // Another session holds the code's row lock and does not let go: a stuck transaction.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM codes WHERE hash = $1 FOR UPDATE', [hash('held')]);
    try {
      await expect(backend.store.consumeCode(hash('held'), NOW, { access: access('a'), refresh: undefined })).rejects.toBeInstanceOf(StoreUnavailableError);
      // Reads of other rows are not blocked, and the pool still serves, nobody waiting for a connection.
      expect(await backend.health()).toEqual({ ok: true });
      expect(backend.poolStats()).toMatchObject({ waiting: 0 });
      expect(backend.poolStats().total).toBeGreaterThanOrEqual(1);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    // Once the lock is released the exchange goes through.
    expect(await backend.store.consumeCode(hash('held'), NOW, { access: access('a'), refresh: undefined })).toEqual(code('held'));
    await backend.close();
  });

  it('runs the cleanup on one instance at a time, and each expired record goes once', async () => {
    const url = await db().createDatabase();
    const instances = await Promise.all([1, 2, 3].map(async () => (await PostgresBackend.open({ url, logger: silentLogger(), random: cryptoRandom })).backend));
    const first = instances[0] as PostgresBackend;
    for (let i = 0; i < 200; i++) await first.store.putTokens(access(`old-${i}`, NOW + 1), undefined);
    await first.store.putCode(code('old-code', NOW + 1));
    await first.store.putTokens(access('live'), undefined);

    // While another instance's cleanup runs (it holds the cleanup lock), this one skips its round.
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock($1)', [CLEANUP_LOCK]);
    expect(await first.store.deleteExpired(NOW + 10)).toEqual({ codes: 0, accessTokens: 0, refreshTokens: 0, skipped: true });
    expect(await first.store.getCode(hash('old-code'), NOW)).toBeDefined();
    await other.query('COMMIT');
    await other.end();

    const results = await Promise.all(instances.map((b) => b.store.deleteExpired(NOW + 10)));
    const total = results.reduce((n, r) => ({ codes: n.codes + r.codes, accessTokens: n.accessTokens + r.accessTokens, refreshTokens: n.refreshTokens + r.refreshTokens }), {
      codes: 0,
      accessTokens: 0,
      refreshTokens: 0,
    });
    expect(total).toEqual({ codes: 1, accessTokens: 200, refreshTokens: 0 });
    expect(await first.store.getAccessToken(hash('old-1'), NOW)).toBeUndefined();
    expect(await first.store.getAccessToken(hash('live'), NOW)).toBeDefined();
    for (const b of instances) await b.close();
  });
});

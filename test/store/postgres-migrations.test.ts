import net from 'node:net';
import pg from 'pg';
import { runCli } from '../../src/cli/run.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { migrate } from '../../src/store/postgres/migrate.js';
import { LATEST_VERSION, MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { StoreOpenError, type ClientMetadata } from '../../src/store/types.js';
import { captureIo } from '../helpers/cli-io.js';
import { useTestPostgres } from '../helpers/use-test-postgres.js';
import { silentLogger } from '../helpers/unit-context.js';

/**
 * Versioned migrations on a real PostgreSQL: applied once even when instances start
 * together, run alone by `latchkey migrate`, and a database newer than the code stops
 * startup with one clear line.
 */

const db = useTestPostgres();

async function appliedVersions(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
  } finally {
    await client.end();
  }
}

const open = (url: string): Promise<{ backend: PostgresBackend; report: { migrations?: { applied: number[]; version: number } } }> =>
  PostgresBackend.open({ url, logger: silentLogger(), random: cryptoRandom });

describe('PostgreSQL migrations', () => {
  it('are applied once when four instances start together on an empty database', async () => {
    const url = await db().createDatabase();
    const opened = await Promise.all([open(url), open(url), open(url), open(url)]);
    const applied = opened.map((o) => o.report.migrations?.applied ?? []);
    // Exactly one instance applied them; the others waited on the lock and found them done.
    expect(applied.filter((a) => a.length > 0)).toEqual([MIGRATIONS.map((m) => m.version)]);
    expect(opened.every((o) => o.report.migrations?.version === LATEST_VERSION)).toBe(true);
    expect(await appliedVersions(url)).toEqual(MIGRATIONS.map((m) => m.version));
    for (const o of opened) await o.backend.close();
  });

  it('migrate() brings a database up to date, then finds nothing to do', async () => {
    const url = await db().createDatabase();
    expect(await migrate(url)).toEqual({ applied: MIGRATIONS.map((m) => m.version), version: LATEST_VERSION });
    expect(await migrate(url)).toEqual({ applied: [], version: LATEST_VERSION });
  });

  it('migration 2 counts the clients a version 1 database holds, and its triggers keep the count through every change', async () => {
    const url = await db().createDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // A database as Latchkey left it at schema version 1, with clients.
      const first = MIGRATIONS.find((m) => m.version === 1);
      await client.query(first?.sql ?? '');
      await client.query("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now()); INSERT INTO schema_migrations (version, name) VALUES (1, 'v1')");
      const metadata: ClientMetadata = { redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] };
      for (let i = 0; i < 7; i++) await client.query('INSERT INTO clients (client_id, issued_at, metadata) VALUES ($1, 1, $2)', [`old-${i}`, JSON.stringify(metadata)]);
      expect(await migrate(url)).toEqual({ applied: MIGRATIONS.filter((m) => m.version > 1).map((m) => m.version), version: LATEST_VERSION });

      const { backend } = await open(url);
      const exact = async (): Promise<number> => (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM clients')).rows[0]?.n ?? -1;
      expect(await backend.store.clientCount()).toBe(7);
      // Registrations from several connections at once, deletions of every kind, plain SQL: always the exact count.
      await Promise.all(Array.from({ length: 30 }, (_, i) => backend.store.putClient({ clientId: `new-${i}`, issuedAt: 2, metadata })));
      await backend.store.putClient({ clientId: 'new-0', issuedAt: 3, metadata });
      expect(await backend.store.clientCount()).toBe(37);
      await backend.store.deleteClients(['new-1', 'new-2', 'absent']);
      expect(await backend.store.deleteUnusedClients(2)).toBe(7);
      await client.query("DELETE FROM clients WHERE client_id = 'new-3'");
      expect(await backend.store.clientCount()).toBe(await exact());
      expect(await backend.store.clientCount()).toBe(27);
      await client.query('TRUNCATE clients');
      expect(await backend.store.clientCount()).toBe(0);
      await backend.store.putClient({ clientId: 'after', issuedAt: 4, metadata });
      expect(await backend.store.clientCount()).toBe(1);
      await backend.close();
    } finally {
      await client.end();
    }
  });

  it('stops startup with a clear error when the database is newer than the code', async () => {
    const url = await db().createDatabase();
    await migrate(url);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from the future')", [LATEST_VERSION + 1]);
    await client.end();
    const opening = open(url);
    await expect(opening).rejects.toBeInstanceOf(StoreOpenError);
    await expect(opening).rejects.toThrow(`has schema version ${LATEST_VERSION + 1}, newer than this Latchkey knows (${LATEST_VERSION}): upgrade Latchkey`);
  });

  it('an unreachable database stops startup with one line that names it but never its password', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port: p } = s.address() as net.AddressInfo;
        s.close(() => resolve(p));
      });
    });
    const opening = open(`postgres://latchkey:s3cret-password@127.0.0.1:${port}/latchkey`);
    await expect(opening).rejects.toBeInstanceOf(StoreOpenError);
    const message = await opening.then(
      () => '',
      (err: Error) => err.message,
    );
    expect(message).toContain(`127.0.0.1:${port}/latchkey`);
    expect(message).not.toContain('s3cret-password');
    expect(message).not.toContain('\n');
  });
});

describe('latchkey migrate', () => {
  it('applies the migrations to the database at OAUTH_DATABASE_URL and says so', async () => {
    const url = await db().createDatabase();
    const io = captureIo({ env: { OAUTH_DATABASE_URL: url } });
    expect(await runCli(['migrate'], io)).toBe(0);
    expect(io.text()).toMatch(new RegExp(`applied migration\\(s\\) ${MIGRATIONS.map((m) => m.version).join(', ')}; schema version ${LATEST_VERSION}`));
    const again = captureIo({ env: { OAUTH_DATABASE_URL: url } });
    expect(await runCli(['migrate'], again)).toBe(0);
    expect(again.text()).toContain(`schema up to date at version ${LATEST_VERSION}`);
    expect(again.text()).not.toContain('postgres@');
  });

  it('says what is missing without OAUTH_DATABASE_URL', async () => {
    const io = captureIo({ env: {} });
    expect(await runCli(['migrate'], io)).toBe(1);
    expect(io.text()).toContain('OAUTH_DATABASE_URL is not set');
  });
});

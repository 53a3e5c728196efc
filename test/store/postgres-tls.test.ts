import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { localhostCertificate } from '../helpers/localhost-cert.js';
import { runCli } from '../../src/cli/run.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { StoreOpenError } from '../../src/store/types.js';
import { captureIo } from '../helpers/cli-io.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { freePort } from '../helpers/running-app.js';
import { silentLogger } from '../helpers/unit-context.js';

/**
 * TLS is chosen by the connection URL alone, as managed databases require: with
 * sslmode=verify-full and the server's CA in sslrootcert the backend connects over TLS;
 * without a CA it trusts, it refuses to start rather than talk to an unverified server.
 */

let db: TestPostgres;
let dir: string;
let caFile: string;
beforeAll(async () => {
  const pems = await localhostCertificate();
  dir = await mkdtemp(path.join(os.tmpdir(), 'latchkey-pg-ca-'));
  caFile = path.join(dir, 'ca.pem');
  await writeFile(caFile, pems.cert);
  db = await startTestPostgres({ tls: pems });
}, 180_000);
afterAll(async () => {
  await db?.close();
  await rm(dir, { recursive: true, force: true });
}, 180_000);

/** The URL of the test database with these query parameters. */
const withParams = (params: string): string => `${db.url}?${params}`;

describe('PostgreSQL over TLS', () => {
  it('connects over TLS when the URL says sslmode=verify-full and names the CA', async () => {
    const { backend } = await PostgresBackend.open({ url: withParams(`sslmode=verify-full&sslrootcert=${caFile}`), logger: silentLogger(), random: cryptoRandom });
    await backend.store.putClient({
      clientId: 'over-tls',
      issuedAt: 1,
      metadata: { redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] },
    });
    // The server's own view: Latchkey's connections are encrypted.
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const { rows } = await admin.query<{ ssl: boolean }>(
      "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'latchkey'",
    );
    await admin.end();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.ssl)).toBe(true);
    expect(await backend.store.getClient('over-tls')).toBeDefined();
    await backend.close();
  });

  it('refuses to start against a certificate it cannot verify', async () => {
    await expect(PostgresBackend.open({ url: withParams('sslmode=verify-full'), logger: silentLogger(), random: cryptoRandom })).rejects.toBeInstanceOf(StoreOpenError);
  });

  it('latchkey doctor says the connection is encrypted and verified, or encrypted only', async () => {
    const check = async (params: string): Promise<string> => {
      const io = captureIo({ env: { OAUTH_DATABASE_URL: withParams(params), PORT: String(await freePort()) } });
      await runCli(['doctor'], io);
      return io.text().split('\n').find((l) => l.includes(' database TLS: ')) ?? '';
    };
    expect(await check(`sslmode=verify-full&sslrootcert=${caFile}`)).toMatch(/ok .*encrypted \(TLSv1\.[23]\), certificate verified \(sslmode=verify-full\)/);
    expect(await check('sslmode=no-verify')).toMatch(/warn .*encrypted \(TLSv1\.[23]\), but the server's certificate is not checked/);
  });
});

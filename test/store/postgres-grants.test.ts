import pg from 'pg';
import { exchangeAuthorizationCode, issueAuthorizationCode } from '../../src/oauth/grants/authorization-code.js';
import { s256 } from '../../src/oauth/pkce.js';
import { refreshAccessToken } from '../../src/oauth/grants/refresh-token.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { emptyDatabase } from '../helpers/postgres.js';
import { useTestPostgres } from '../helpers/use-test-postgres.js';
import { grantTests } from '../unit/grants.js';
import { clientRecord, FakeClock, oauthContext, silentLogger, testConfig, type TestContext } from '../helpers/unit-context.js';

/**
 * The protocol's grant rules (the same tests as test/unit/grants.test.ts) on a real
 * PostgreSQL: code exchange, rotation with its grace window, reuse detection, revocation and
 * introspection behave exactly as on the files. And no raw credential reaches the database.
 */

const db = useTestPostgres();

async function postgresContext(): Promise<TestContext> {
  await emptyDatabase(db().url);
  const clock = new FakeClock();
  const logger = silentLogger();
  const { backend } = await PostgresBackend.open({ url: db().url, logger, random: cryptoRandom });
  const config = testConfig('/nonexistent-data-dir-postgres-is-used');
  return {
    ctx: oauthContext(config, backend.store, backend.audit, clock, logger),
    store: backend.store,
    audit: backend.audit,
    clock,
    dir: '',
    close: () => backend.close(),
  };
}

grantTests('PostgreSQL', postgresContext);

describe('credentials in PostgreSQL', () => {
  it('are stored only as hashes: no code, access token or refresh token appears in any table', async () => {
    const t = await postgresContext();
    try {
      const redirect = 'https://claude.ai/api/mcp/auth_callback';
      const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
      const client = clientRecord({}, { redirect_uris: [redirect] });
      await t.store.putClient(client);
      const { code } = await issueAuthorizationCode(t.ctx, { clientId: client.clientId, redirectUri: redirect, codeChallenge: s256(verifier), scopes: ['read'], resource: 'https://mcp.example.com/mcp' });
      const first = await exchangeAuthorizationCode(t.ctx, client, { code, redirect_uri: redirect, code_verifier: verifier });
      const second = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
      const raw = [code, first.access_token, first.refresh_token, second.access_token, second.refresh_token];
      expect(raw.every((r) => typeof r === 'string' && r.length >= 43)).toBe(true);

      const reader = new pg.Client({ connectionString: db().url });
      await reader.connect();
      try {
        const { rows: tables } = await reader.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
        let dump = '';
        for (const { tablename } of tables) {
          const { rows } = await reader.query(`SELECT * FROM "${tablename}"`);
          dump += JSON.stringify(rows);
        }
        expect(dump.length).toBeGreaterThan(1000);
        for (const secret of raw) expect(dump).not.toContain(secret);
      } finally {
        await reader.end();
      }
    } finally {
      await t.close();
    }
  });
});

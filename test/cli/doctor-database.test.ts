import pg from 'pg';
import { runCli } from '../../src/cli/run.js';
import { migrate } from '../../src/store/postgres/migrate.js';
import { LATEST_VERSION } from '../../src/store/postgres/migrations.js';
import { captureIo } from '../helpers/cli-io.js';
import { useTestPostgres } from '../helpers/use-test-postgres.js';
import { freePort, startApp } from '../helpers/running-app.js';

/**
 * `latchkey doctor` with OAUTH_DATABASE_URL: it connects, reports the server, the schema
 * version against the code's, whether TLS is in use, and a round trip's time, and never
 * prints the password. (Over TLS: test/store/postgres-tls.test.ts.)
 */

const PASSWORD = 'correct-horse-battery-staple';
const line = (text: string, name: string): string => text.split('\n').find((l) => l.includes(` ${name}: `)) ?? '';

const db = useTestPostgres();

/** A fresh database's URL with a password in it (the test server trusts local users, so any works). */
async function database(): Promise<string> {
  const url = new URL(await db().createDatabase());
  url.password = PASSWORD;
  return url.toString();
}

async function doctor(env: Record<string, string>): Promise<{ code: number; out: string }> {
  const io = captureIo({ env });
  const code = await runCli(['doctor'], io);
  const out = io.text();
  expect(out).not.toContain(PASSWORD);
  return { code, out };
}

it('checks a running deployment on PostgreSQL: connection, schema, TLS, round trip, and the daemon reaching it', async () => {
  const url = await database();
  const app = await startApp({ OAUTH_DATABASE_URL: url });
  try {
    const { code, out } = await doctor(app.env);
    expect(code).toBe(0);
    expect(out).toMatch(/state in PostgreSQL \(127\.0\.0\.1:\d+\/latchkey_test_\w+\)/);
    expect(line(out, 'database')).toMatch(/ok +database: connected to 127\.0\.0\.1:\d+\/\w+ \(PostgreSQL \d+\.\d+.*\); round trip \d+(\.\d+)? ms$/);
    expect(line(out, 'schema')).toMatch(new RegExp(`ok .*version ${LATEST_VERSION}, the one this Latchkey expects`));
    expect(line(out, 'database TLS')).toMatch(/ok .*not encrypted \(sslmode unset\): fine for a database on this machine/);
    expect(line(out, 'data dir')).toMatch(/ok .*mode 0700/);
    // No data files are looked for: the state is in the database.
    expect(out).not.toContain('clients.json');
    expect(out).not.toContain('journal');
    expect(line(out, 'store')).toMatch(/ok .*the daemon reaches its database/);
  } finally {
    await app.stop();
  }
});

it('says a database not migrated yet is empty, and fails on one a newer Latchkey migrated', async () => {
  const url = await database();
  const empty = await doctor({ OAUTH_DATABASE_URL: url, PORT: String(await freePort()) });
  expect(line(empty.out, 'schema')).toMatch(/warn .*no Latchkey tables yet/);
  expect(empty.out).toMatch(/fix: start Latchkey \(it creates them\), or run latchkey migrate/);

  await migrate(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')");
  await client.end();
  const newer = await doctor({ OAUTH_DATABASE_URL: url, PORT: String(await freePort()) });
  expect(newer.code).toBe(1);
  expect(line(newer.out, 'schema')).toMatch(new RegExp(`FAIL .*version 99, newer than this Latchkey knows \\(${LATEST_VERSION}\\)`));
});

it('fails with a fix when the database cannot be reached, naming the host but never the password', async () => {
  const port = await freePort();
  const { code, out } = await doctor({ OAUTH_DATABASE_URL: `postgres://latchkey:${PASSWORD}@127.0.0.1:${port}/latchkey`, PORT: String(await freePort()) });
  expect(code).toBe(1);
  expect(line(out, 'database')).toMatch(new RegExp(`FAIL .*cannot use 127\\.0\\.0\\.1:${port}/latchkey: .*ECONNREFUSED`));
  expect(out).toMatch(/fix: check OAUTH_DATABASE_URL/);
});

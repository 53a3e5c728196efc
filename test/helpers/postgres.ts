import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

/**
 * A real PostgreSQL for the tests, with no manual step. With OAUTH_TEST_DATABASE_URL set
 * (a URL whose user may create databases), each test file gets its own database on that
 * server. Otherwise each test file starts its own throwaway cluster: `initdb` into a
 * temporary directory (as the `postgres` user when the tests run as root, since PostgreSQL
 * refuses to run as root), a server on a free 127.0.0.1 port with its socket in that
 * directory, stopped and removed at the end. Its own cluster lets a test stop and start
 * the server to see what an outage does.
 */

const run = promisify(execFile);

export interface TestPostgres {
  /** The URL of this test file's own, empty database. */
  url: string;
  /** Another fresh database on the same server. */
  createDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: connections are cut) and starts it again; undefined on a server we did not start. */
  stop?: () => Promise<void>;
  start?: () => Promise<void>;
  /** Drops the databases (or stops and removes the cluster). */
  close(): Promise<void>;
}

/** Where initdb and pg_ctl are: PostgreSQL's own directory (Debian's layout) first, then PATH. */
function findBinDir(): string {
  const roots = ['/usr/lib/postgresql', '/usr/local/pgsql'];
  for (const root of roots) {
    if (!existsSync(root)) continue;
    const versions = readdirSync(root)
      .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(root, versions[0], 'bin');
    if (existsSync(path.join(root, 'bin', 'initdb'))) return path.join(root, 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl'))) return dir;
  }
  throw new Error('PostgreSQL server binaries (initdb, pg_ctl) not found: install them (apt-get install postgresql; .ci/run does) or set OAUTH_TEST_DATABASE_URL');
}


/** Creates a database named after this process on the server of `adminUrl`; returns its URL. */
async function createDatabaseOn(adminUrl: string, created: string[]): Promise<string> {
  const name = `latchkey_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  created.push(name);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    for (const name of names) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

export interface TestPostgresOptions {
  /** Serve TLS with this certificate and key (PEM) besides plain connections; needs a server the tests start. */
  tls?: { cert: string; key: string };
  /** A server of the test's own even when OAUTH_TEST_DATABASE_URL is set: for tests that stop and start it. */
  own?: boolean;
}

export async function startTestPostgres(options: TestPostgresOptions = {}): Promise<TestPostgres> {
  const external = options.tls || options.own ? undefined : process.env.OAUTH_TEST_DATABASE_URL;
  const created: string[] = [];
  if (external) {
    return {
      url: await createDatabaseOn(external, created),
      createDatabase: () => createDatabaseOn(external, created),
      close: () => dropDatabases(external, created),
    };
  }

  const bin = findBinDir();
  const asRoot = process.getuid?.() === 0;
  // The server's processes get a bare environment: nothing of the test run's settings.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
  const exec = (tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args], { env }) : run(path.join(bin, tool), args, { env });

  // As root, under /tmp: the `postgres` user must be able to reach it (TMPDIR may be private to root).
  const root = await mkdtemp(path.join(asRoot ? '/tmp' : os.tmpdir(), 'latchkey-pg-'));
  /** Gives a file or directory to the user the server runs as. */
  let own = async (_file: string): Promise<void> => undefined;
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) throw new Error('running as root, the tests start PostgreSQL as the `postgres` user, which does not exist: install postgresql (it creates it) or set OAUTH_TEST_DATABASE_URL');
    own = (file) => chown(file, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
  }
  await own(root);
  let serverOptions = `-c listen_addresses=127.0.0.1`;
  if (options.tls) {
    await writeFile(path.join(root, 'server.crt'), options.tls.cert, { mode: 0o600 });
    await writeFile(path.join(root, 'server.key'), options.tls.key, { mode: 0o600 });
    for (const f of ['server.crt', 'server.key']) await own(path.join(root, f));
    serverOptions += ` -c ssl=on -c ssl_cert_file=${root}/server.crt -c ssl_key_file=${root}/server.key`;
  }
  const data = path.join(root, 'data');
  const pgCtl = path.join(bin, 'pg_ctl');
  // If the test process dies without its afterAll, the server must not outlive it.
  const stopOnExit = (): void => {
    const args = ['-D', data, '-m', 'immediate', '-w', 'stop'];
    spawnSync(asRoot ? 'runuser' : pgCtl, asRoot ? ['-u', 'postgres', '--', pgCtl, ...args] : args, { env, stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', stopOnExit);

  await exec('initdb', ['-D', data, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C', '--no-sync']);
  let port = 0;
  const start = async (): Promise<void> => {
    await exec('pg_ctl', ['-D', data, '-l', path.join(root, 'server.log'), '-w', '-t', '120', '-o', `-p ${port} -k ${root} ${serverOptions}`, 'start']);
  };
  const stop = async (): Promise<void> => {
    await exec('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '120', 'stop']);
  };
  // A port found free may be taken before the server binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return {
    url: await createDatabaseOn(adminUrl, created),
    createDatabase: () => createDatabaseOn(adminUrl, created),
    stop,
    start,
    close: async () => {
      await stop().catch(() => undefined);
      process.removeListener('exit', stopOnExit);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Empties every table but the migrations' own: a fresh start for the next test, schema kept. */
export async function emptyDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'");
    if (rows.length > 0) await client.query(`TRUNCATE ${rows.map((r) => `"${r.tablename}"`).join(', ')} RESTART IDENTITY`);
  } finally {
    await client.end();
  }
}

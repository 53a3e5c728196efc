import { createLogger } from '../logger.js';
import { schemaVersion } from '../store/postgres/migrate.js';
import { LATEST_VERSION } from '../store/postgres/migrations.js';
import { createPool, describeUrl } from '../store/postgres/pool.js';
import type { Check } from './check.js';

/** Round trips timed; the fastest is reported (the others include scheduling noise). */
const ROUND_TRIPS = 5;
/** Past this, every request that changes state waits noticeably on the database. */
const SLOW_ROUND_TRIP_MS = 20;

/** Whether the host is this machine or a private network, where plain connections can be fine. */
const privateHost = (host: string): boolean =>
  /^(localhost|127\.|::1$|\[::1\]$|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/.test(host) || host.startsWith('/') || !host.includes('.');

/**
 * `latchkey doctor` with OAUTH_DATABASE_URL: connects as the daemon would (same pool, same
 * TLS from the URL's sslmode) and reports the server, the schema version against this
 * code's, whether the connection is encrypted, and a round trip's time. Messages name the
 * host, port and database only: never the password (scrubbed even from the driver's messages).
 */
export async function checkDatabase(url: string, add: (c: Check) => void): Promise<void> {
  const where = describeUrl(url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    add({ level: 'fail', name: 'database', detail: 'OAUTH_DATABASE_URL is not a URL', fix: 'percent-encode special characters in the user and password (@ is %40, / is %2F)' });
    return;
  }
  const secret = decodeURIComponent(parsed.password);
  const scrub = (text: string): string => (secret ? text.split(secret).join('***').split(parsed.password).join('***') : text);
  const pool = createPool({ url, logger: createLogger('silent'), max: 1 });
  try {
    let server: string;
    let fastest = Infinity;
    try {
      server = (await pool.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? 'unknown version';
      for (let i = 0; i < ROUND_TRIPS; i++) {
        const started = process.hrtime.bigint();
        await pool.query('SELECT 1');
        fastest = Math.min(fastest, Number(process.hrtime.bigint() - started) / 1e6);
      }
    } catch (err) {
      add({
        level: 'fail',
        name: 'database',
        detail: `cannot use ${where}: ${scrub((err as Error).message)}`,
        fix: 'check OAUTH_DATABASE_URL (host, port, database, user and password; percent-encode special characters), that the server runs and accepts this host (pg_hba.conf, firewall), and its sslmode (docs/scaling.md)',
      });
      return;
    }
    const latency = `round trip ${fastest.toFixed(fastest < 10 ? 2 : 0)} ms`;
    if (fastest > SLOW_ROUND_TRIP_MS) {
      add({
        level: 'warn',
        name: 'database',
        detail: `connected to ${where} (PostgreSQL ${server}); ${latency}: each token request waits for one or two of these`,
        fix: 'run Latchkey close to the database (same region or data centre)',
      });
    } else {
      add({ level: 'ok', name: 'database', detail: `connected to ${where} (PostgreSQL ${server}); ${latency}` });
    }

    try {
      await checkSchemaAndTls(pool, parsed, add);
    } catch (err) {
      add({ level: 'fail', name: 'database', detail: `${where} stopped answering: ${scrub((err as Error).message)}`, fix: 'run doctor again; if it persists, check the server\u2019s log' });
    }
  } finally {
    await pool.end();
  }
}

/** The schema version against this code's, and whether the connection is encrypted and verified. */
async function checkSchemaAndTls(pool: ReturnType<typeof createPool>, parsed: URL, add: (c: Check) => void): Promise<void> {
  const version = await schemaVersion(pool);
  if (version === undefined) {
    add({ level: 'warn', name: 'schema', detail: 'empty: no Latchkey tables yet', fix: 'start Latchkey (it creates them), or run latchkey migrate' });
  } else if (version > LATEST_VERSION) {
    add({
      level: 'fail',
      name: 'schema',
      detail: `version ${version}, newer than this Latchkey knows (${LATEST_VERSION}): it refuses to start on it`,
      fix: 'upgrade Latchkey to the version that migrated the database',
    });
  } else if (version < LATEST_VERSION) {
    add({ level: 'warn', name: 'schema', detail: `version ${version}; this Latchkey brings ${LATEST_VERSION}`, fix: 'run latchkey migrate (or restart Latchkey: it migrates at start)' });
  } else {
    add({ level: 'ok', name: 'schema', detail: `version ${version}, the one this Latchkey expects` });
  }

  const tls = (await pool.query<{ ssl: boolean; version: string | null }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0];
  const sslmode = parsed.searchParams.get('sslmode');
  // With uselibpqcompat=true, require and prefer take libpq's meaning: encrypted, not verified.
  const unverified = sslmode === 'no-verify' || (parsed.searchParams.get('uselibpqcompat') === 'true' && (sslmode === 'require' || sslmode === 'prefer'));
  if (tls?.ssl) {
    if (unverified) {
      add({ level: 'warn', name: 'database TLS', detail: `encrypted (${tls.version ?? 'TLS'}), but the server's certificate is not checked (sslmode=${sslmode ?? ''})`, fix: 'use sslmode=verify-full (with sslrootcert=<CA file> for a private CA)' });
    } else {
      add({ level: 'ok', name: 'database TLS', detail: `encrypted (${tls.version ?? 'TLS'}), certificate verified (sslmode=${sslmode ?? 'verify-full'})` });
    }
  } else if (privateHost(parsed.hostname)) {
    add({ level: 'ok', name: 'database TLS', detail: `not encrypted (sslmode ${sslmode ?? 'unset'}): fine for a database on this machine or a private network` });
  } else {
    add({ level: 'warn', name: 'database TLS', detail: `not encrypted, to ${parsed.hostname}: queries and token hashes cross the network in clear`, fix: 'add sslmode=verify-full to OAUTH_DATABASE_URL (managed databases require it)' });
  }
}

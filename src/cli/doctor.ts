import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { ConfigError, isLoopbackIssuer, loadConfig, type Config } from '../config.js';
import { baseEnvOf, GatewayConfigError, loadGatewayFile, probeHttpServer, probeStdioServer, type GatewayFile } from '../gateway/index.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { describeUrl } from '../store/postgres/pool.js';
import { FILES, OPTIONAL_COLLECTIONS, type CollectionName } from '../store/file/collections.js';
import { CONSENT_KEY_FILE } from '../store/file/consent-key.js';
import { readDataDir, setAsideFiles, type DataDirState } from '../store/file/data-dir.js';
import { readSnapshotFile } from '../store/file/snapshot.js';
import type { Check, Level } from './check.js';
import { checkDatabase } from './doctor-database.js';
import { checkCallbackRoutes, checkSignIn } from './doctor-sign-in.js';
import { fetchFailure as reason, localBaseUrl, type CliIo } from './io.js';

export type { Check } from './check.js';

const LABEL: Record<Level, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };
const HTTP_TIMEOUT_MS = 5000;
/**
 * How long a gateway server gets to start and list its tools: long enough for `npx -y` to
 * fetch a package on a slow line, which is what a first start under the gateway also waits for.
 */
const GATEWAY_PROBE_TIMEOUT_MS = 30_000;

/**
 * `latchkey doctor`: checks the configuration, the storage (the data directory: ownership,
 * modes, every file parses; or, with OAUTH_DATABASE_URL, the database: connection, schema
 * version, TLS, round-trip time), that the running daemon and the public issuer URL both
 * serve metadata for exactly OAUTH_ISSUER_URL, and, with OAUTH_GATEWAY_CONFIG, the gateway
 * file and each of its servers. Prints each check with a fix; exits 1 if any check failed.
 */
export async function doctor(io: CliIo, env: Record<string, string | undefined>): Promise<number> {
  const checks: Check[] = [];
  const add = (check: Check): void => {
    checks.push(check);
    io.out(`  ${LABEL[check.level]}  ${check.name}: ${check.detail}\n`);
    if (check.fix) io.out(`        fix: ${check.fix}\n`);
  };

  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    add({ level: 'fail', name: 'config', detail: err.message, fix: `correct ${err.variable} in the env file, then run doctor again` });
    return summarize(io, checks);
  }
  const { databaseUrl } = config.store;
  const dataDir = path.resolve(io.cwd, config.store.dataDir);
  io.out(`Latchkey doctor: issuer ${config.issuer}, ${databaseUrl === undefined ? `data in ${dataDir}` : `state in PostgreSQL (${describeUrl(databaseUrl)}), pid lock and control socket in ${dataDir}`}\n`);
  add({ level: 'ok', name: 'config', detail: 'every variable is valid' });

  checkSettings(config, add);
  await checkSignIn(config, add);
  if (databaseUrl === undefined) await checkDataDir(dataDir, add);
  else {
    await checkDatabase(databaseUrl, add);
    await checkDataDir(dataDir, add, { files: false });
  }
  await checkServer(config, add);
  if (config.gateway.configFile !== undefined) await checkGateway(config, path.resolve(io.cwd, config.gateway.configFile), env, add);
  return summarize(io, checks);
}

function summarize(io: CliIo, checks: Check[]): number {
  const count = (level: Level): number => checks.filter((c) => c.level === level).length;
  const failures = count('fail');
  io.out(`\n${count('ok')} ok, ${count('warn')} warning(s), ${failures} failure(s)\n`);
  return failures > 0 ? 1 : 0;
}

function checkSettings(config: Config, add: (c: Check) => void): void {
  const pin = config.pin.source;
  if (pin.kind === 'hash') add({ level: 'ok', name: 'pin', detail: 'OAUTH_PIN_HASH is set; the plain PIN is not stored' });
  else if (pin.kind === 'plain') {
    add({
      level: 'warn',
      name: 'pin',
      detail: 'OAUTH_PIN holds the plain PIN',
      fix: 'run `latchkey hash-pin`, put its output in OAUTH_PIN_HASH and remove OAUTH_PIN',
    });
  } else {
    add({
      level: 'warn',
      name: 'pin',
      detail: 'no PIN is set: a new one is generated and printed at every start',
      fix: 'run `latchkey hash-pin` and set OAUTH_PIN_HASH to its output',
    });
  }

  if (config.https) add({ level: 'ok', name: 'issuer', detail: `${config.issuer} uses https` });
  else if (isLoopbackIssuer(config.issuer)) {
    add({
      level: 'warn',
      name: 'issuer',
      detail: `${config.issuer} is local: fine for trying out, but ChatGPT and Claude need a public https URL`,
      fix: 'set OAUTH_ISSUER_URL to the public https URL (no trailing slash), e.g. https://auth.example.com',
    });
  } else {
    add({
      level: 'fail',
      name: 'issuer',
      detail: `${config.issuer} is plain http on a public name: connectors refuse it and tokens would travel in clear`,
      fix: 'serve it over https (e.g. Cloudflare Tunnel, see docs/deploy.md) and set OAUTH_ISSUER_URL to the https URL',
    });
  }

  if (config.introspectionSecret) add({ level: 'ok', name: 'introspection', detail: 'OAUTH_INTROSPECTION_SECRET is set' });
  else {
    add({
      level: 'warn',
      name: 'introspection',
      detail: 'OAUTH_INTROSPECTION_SECRET is not set: /introspect refuses every MCP server',
      fix: 'set OAUTH_INTROSPECTION_SECRET (openssl rand -hex 32) here and in your MCP server',
    });
  }

  const loopbackHost = /^(127\.|::1$|localhost$)/.test(config.listen.host);
  if (config.trustProxy === false && config.https && loopbackHost) {
    add({
      level: 'warn',
      name: 'trust proxy',
      detail: 'TRUST_PROXY is off but the daemon listens on loopback behind an https URL: every client looks like 127.0.0.1 to the rate limits',
      fix: 'if cloudflared (or another proxy) on this machine forwards to Latchkey, set TRUST_PROXY=loopback',
    });
  } else if (config.trustProxy === false && config.https && !loopbackHost) {
    add({
      level: 'warn',
      name: 'trust proxy',
      detail: `HOST=${config.listen.host} is reachable from other machines and TRUST_PROXY is off: behind a tunnel or proxy, every client looks like the proxy to the rate limits, and anyone who reaches the port directly skips the proxy`,
      fix: 'run the proxy (cloudflared) on this machine with HOST=127.0.0.1 and TRUST_PROXY=loopback; or set TRUST_PROXY to the proxy\'s address',
    });
  } else if (typeof config.trustProxy === 'number' && config.trustProxy > 1) {
    add({
      level: 'warn',
      name: 'trust proxy',
      detail: `TRUST_PROXY=${config.trustProxy} trusts ${config.trustProxy} proxies: with fewer in front of Latchkey, clients can choose their own address in X-Forwarded-For`,
      fix: 'count the proxies exactly (cloudflared alone is 1, better still: loopback), or list their addresses',
    });
  } else {
    add({ level: 'ok', name: 'trust proxy', detail: `TRUST_PROXY=${String(config.trustProxy)}` });
  }
}

async function statOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await fsp.stat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function describeOwner(stat: Stats): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined || stat.uid === uid) return undefined;
  return `owned by uid ${stat.uid}, but doctor runs as uid ${uid}`;
}

/** `files: false` (PostgreSQL): the directory holds only the pid lock and the control socket, no data files. */
async function checkDataDir(dir: string, add: (c: Check) => void, { files = true } = {}): Promise<void> {
  let stat: Stats | undefined;
  try {
    stat = await statOrUndefined(dir);
  } catch (err) {
    add({ level: 'fail', name: 'data dir', detail: `cannot inspect ${dir}: ${(err as Error).message}`, fix: 'run doctor as the user that runs Latchkey (e.g. sudo -u latchkey latchkey doctor)' });
    return;
  }
  if (!stat) {
    if (files) add({ level: 'warn', name: 'data dir', detail: `${dir} does not exist yet`, fix: 'start Latchkey once: it creates the directory (mode 0700) and its files' });
    else add({ level: 'ok', name: 'data dir', detail: `${dir} does not exist yet: the daemon creates it for its pid lock and control socket` });
    return;
  }
  if (!stat.isDirectory()) {
    add({ level: 'fail', name: 'data dir', detail: `${dir} is not a directory`, fix: 'point OAUTH_DATA_DIR at a directory' });
    return;
  }
  const mode = stat.mode & 0o777;
  const owner = describeOwner(stat);
  if (owner && process.getuid?.() !== 0) {
    add({ level: 'fail', name: 'data dir', detail: `${dir} is ${owner}`, fix: `run doctor as the service user, or: chown -R <service user> ${dir}` });
  } else if (mode & 0o077) {
    add({ level: 'fail', name: 'data dir', detail: `${dir} has mode ${mode.toString(8)}: other users can reach tokens' hashes and the consent key`, fix: `chmod 700 ${dir}` });
  } else {
    add({ level: 'ok', name: 'data dir', detail: `${dir} mode ${mode.toString(8).padStart(4, '0')}${owner ? ` (${owner}; root can read it)` : ''}` });
  }
  if (!files) return;

  for (const name of Object.keys(FILES) as CollectionName[]) {
    await checkFile(dir, FILES[name], add, () => readSnapshotFile(name, path.join(dir, FILES[name])), OPTIONAL_COLLECTIONS.has(name));
  }
  await checkFile(dir, CONSENT_KEY_FILE, add, (text) =>
    Buffer.from(text.trim(), 'base64url').length >= 32
      ? { ok: true, records: [] }
      : { ok: false, reason: 'the key is shorter than 32 bytes', newer: false },
  );

  await checkJournal(dir, add);

  for (const aside of await setAsideFiles(dir)) {
    const wholeFile = aside.includes('.corrupt-');
    add({
      level: 'warn',
      name: aside,
      detail: wholeFile
        ? 'a data file that could not be read was set aside here at startup (the daemon started that collection from the journal alone)'
        : 'records that could not be read were kept here at startup, one per line; the rest of their file loaded',
      fix: `look at it (restore what matters from a backup), then delete ${path.join(dir, aside)}; /healthz and /admin mention it until then`,
    });
  }
}

/** The journal files: they parse, are private, and how much waits for compaction. */
async function checkJournal(dir: string, add: (c: Check) => void): Promise<void> {
  let state: DataDirState;
  try {
    state = await readDataDir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECHANGED') {
      add({ level: 'ok', name: 'journal', detail: 'a compaction finished while doctor read it (the daemon is busy and well)' });
      return;
    }
    add({ level: 'fail', name: 'journal', detail: (err as Error).message, fix: 'run doctor as the service user; every file must belong to it (mode 0600)' });
    return;
  }
  let records = 0;
  for (const j of state.journals) {
    records += j.records;
    const stat = await fsp.stat(path.join(dir, j.file)).catch(() => undefined); // gone: a compaction just finished
    const mode = (stat?.mode ?? 0o600) & 0o777;
    if (mode & 0o077) add({ level: 'fail', name: j.file, detail: `mode ${mode.toString(8)} lets other users read it`, fix: `chmod 600 ${path.join(dir, j.file)}` });
    if (j.corrupt.length > 0) {
      add({
        level: 'fail',
        name: j.file,
        detail: `${j.corrupt.length} damaged record(s) (line ${j.corrupt.map((c) => c.line).join(', ')}): the disk or someone changed the file`,
        fix: 'the daemon skips them at start and keeps a copy of the file; if a client then gets invalid_grant, it re-authorizes by itself. Check the disk (dmesg, smartctl)',
      });
    }
    if (j.torn) {
      add({
        level: 'warn',
        name: j.file,
        detail: `its last record (line ${j.torn.line}) was cut short by a crash before it was acknowledged`,
        fix: 'nothing to do: the daemon drops it at start',
      });
    }
  }
  add({
    level: 'ok',
    name: 'journal',
    detail:
      state.journals.length === 0
        ? 'empty: the snapshot files hold everything (clean stop)'
        : `${state.journals.length} file(s), ${records} record(s) not yet compacted into the snapshot files`,
  });
}

async function checkFile(
  dir: string,
  file: string,
  add: (c: Check) => void,
  parse: (
    text: string,
  ) =>
    | { ok: true; records: unknown[]; rejected?: { line: number; reason: string }[]; cutShort?: true }
    | { ok: false; reason: string; newer: boolean }
    | Promise<{ ok: true; records: unknown[]; rejected?: { line: number; reason: string }[]; cutShort?: true } | { ok: false; reason: string; newer: boolean }>,
  optional = false,
): Promise<void> {
  const full = path.join(dir, file);
  let text: string;
  let stat: Stats | undefined;
  try {
    stat = await statOrUndefined(full);
    if (!stat) {
      if (optional) add({ level: 'ok', name: file, detail: 'absent: nothing stored in it yet' });
      else add({ level: 'warn', name: file, detail: 'missing', fix: 'start Latchkey: it creates missing files empty' });
      return;
    }
    text = await fsp.readFile(full, 'utf8');
  } catch (err) {
    add({ level: 'fail', name: file, detail: `cannot read: ${(err as Error).message}`, fix: 'run doctor as the service user; the file must belong to it (mode 0600)' });
    return;
  }
  const parsed = await parse(text);
  const mode = stat.mode & 0o777;
  if (!parsed.ok) {
    add({
      level: 'fail',
      name: file,
      detail: parsed.reason,
      fix: parsed.newer
        ? 'upgrade Latchkey: a newer version wrote this file'
        : 'restore it from a backup (see docs/deploy.md); if you start the daemon, it sets the file aside and starts that collection from the journal alone',
    });
  } else if (mode & 0o077) {
    add({ level: 'fail', name: file, detail: `mode ${mode.toString(8)} lets other users read it`, fix: `chmod 600 ${full}` });
  } else if ((parsed.rejected && parsed.rejected.length > 0) || parsed.cutShort) {
    const unreadable = parsed.rejected && parsed.rejected.length > 0 ? `, ${parsed.rejected.length} unreadable: line ${parsed.rejected.map((r) => `${r.line} ${r.reason}`).join('; line ')}` : '';
    add({
      level: 'warn',
      name: file,
      detail: `${parsed.records.length} record(s) read${unreadable}${parsed.cutShort ? '; the file ends before its closing line (cut short)' : ''}`,
      fix: 'start (or restart) the daemon: it keeps what it cannot read aside (a copy of the file or the lines) and loads the rest; restore what is missing from a backup',
    });
  } else {
    const records = file === CONSENT_KEY_FILE ? 'key present' : `${parsed.records.length} record(s) in the snapshot`;
    add({ level: 'ok', name: file, detail: `parses, ${records}, mode ${mode.toString(8).padStart(4, '0')}` });
  }
}

async function fetchJson(url: string): Promise<{ status: number; body: unknown; type: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), redirect: 'manual', headers: { accept: 'application/json' } });
  const type = res.headers.get('content-type') ?? '';
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, type };
}

/** What is wrong with a metadata document for this issuer, or undefined if it is right. */
function metadataProblem(body: unknown, issuer: string): string | undefined {
  if (typeof body !== 'object' || body === null) return 'the answer is not JSON';
  const meta = body as Record<string, unknown>;
  if (meta.issuer !== issuer) return `it names the issuer "${String(meta.issuer)}", not "${issuer}"`;
  for (const key of ['authorization_endpoint', 'token_endpoint', 'registration_endpoint']) {
    const value = meta[key];
    if (typeof value !== 'string' || !value.startsWith(`${issuer}/`)) return `${key} is "${String(value)}", outside the issuer`;
  }
  const methods = meta.code_challenge_methods_supported;
  if (!Array.isArray(methods) || !methods.includes('S256')) return 'it does not advertise PKCE S256';
  return undefined;
}

async function checkServer(config: Config, add: (c: Check) => void): Promise<void> {
  const local = localBaseUrl(config.listen.host, config.listen.port);
  const wellKnown = ENDPOINTS.metadata.path;
  let localUp = false;
  try {
    const meta = await fetchJson(`${local}${wellKnown}`);
    const problem = meta.status === 200 ? metadataProblem(meta.body, config.issuer) : `HTTP ${meta.status}`;
    if (problem) {
      add({ level: 'fail', name: 'daemon', detail: `the daemon at ${local} serves other metadata: ${problem}`, fix: 'restart Latchkey after changing the env file (systemctl restart latchkey)' });
    } else {
      add({ level: 'ok', name: 'daemon', detail: `answers at ${local} with metadata for ${config.issuer}` });
    }
    localUp = true;
    const health = await fetchJson(`${local}${ENDPOINTS.health.path}`);
    const postgres = config.store.databaseUrl !== undefined;
    if (health.status === 200) add({ level: 'ok', name: 'store', detail: postgres ? 'the daemon reaches its database' : 'the daemon can write its data directory' });
    else {
      add({
        level: 'fail',
        name: 'store',
        detail: `/healthz answers ${health.status}: ${JSON.stringify(health.body)}`,
        fix: postgres
          ? 'check that the database is up and reachable from the daemon (see the database check above); the daemon reconnects by itself'
          : 'free disk space and check that the data directory belongs to the service user; the daemon recovers by itself',
      });
    }
  } catch (err) {
    add({ level: 'warn', name: 'daemon', detail: `nothing answers at ${local} (${reason(err)})`, fix: 'start it (systemctl start latchkey), or check PORT and HOST' });
  }

  try {
    const meta = await fetchJson(`${config.issuer}${wellKnown}`);
    if (meta.status !== 200 || !meta.type.includes('json')) {
      add({
        level: 'fail',
        name: 'issuer URL',
        detail: `${config.issuer}${wellKnown} answers HTTP ${meta.status} (${meta.type || 'no content type'})`,
        fix: 'an HTML or 403 answer usually is Cloudflare bot protection or Access in front of the tunnel: exempt this hostname (docs/deploy.md); a 404 or 502 means the tunnel does not route to Latchkey',
      });
      return;
    }
    const problem = metadataProblem(meta.body, config.issuer);
    if (problem) {
      add({ level: 'fail', name: 'issuer URL', detail: `the metadata at ${config.issuer} is wrong: ${problem}`, fix: 'OAUTH_ISSUER_URL must be exactly the public URL, and the tunnel must route it to this daemon' });
    } else {
      add({ level: 'ok', name: 'issuer URL', detail: `${config.issuer} answers with matching metadata` });
      await checkCallbackRoutes(config, add);
    }
  } catch (err) {
    add({
      level: localUp ? 'fail' : 'warn',
      name: 'issuer URL',
      detail: `${config.issuer} does not answer (${reason(err)})`,
      fix: 'check DNS and the tunnel (cloudflared tunnel info), and that this machine can reach its own public URL',
    });
  }
}

/**
 * The gateway file parses with the daemon's own parser, and each server works: a stdio
 * server is started once as the gateway starts it (its `env` plus PATH and HOME, its own
 * process group, ended afterwards) and lists its tools; an HTTP server answers `initialize`.
 */
async function checkGateway(config: Config, file: string, env: Record<string, string | undefined>, add: (c: Check) => void): Promise<void> {
  let parsed: GatewayFile;
  try {
    parsed = await loadGatewayFile(file, { validScopes: config.scopes.valid, defaultScopes: config.scopes.defaults });
  } catch (err) {
    if (!(err instanceof GatewayConfigError)) throw err;
    add({ level: 'fail', name: 'gateway file', detail: err.message, fix: 'correct the file (docs/gateway.md): with it, Latchkey refuses to start, and a reload keeps the servers it runs' });
    return;
  }
  const notes = [
    ...(parsed.ignoredKeys.length > 0 ? [`ignores keys other apps use: ${parsed.ignoredKeys.join(', ')}`] : []),
    ...(parsed.disabled.length > 0 ? [`not serving servers marked disabled: ${parsed.disabled.join(', ')}`] : []),
  ];
  add({ level: 'ok', name: 'gateway file', detail: `${file} parses: ${parsed.servers.length} server(s)${notes.length > 0 ? `; ${notes.join('; ')}` : ''}` });
  const baseEnv = baseEnvOf(env);
  for (const server of parsed.servers) {
    const name = `gateway "${server.name}"`;
    const at = `connector URL ${config.issuer}${server.path}`;
    if (server.kind === 'stdio') {
      const probe = await probeStdioServer(server, baseEnv, GATEWAY_PROBE_TIMEOUT_MS);
      if (probe.ok) {
        const hidden = probe.hiddenTools.length > 0 ? ` (${probe.hiddenTools.length} hidden by its tool policy: ${probe.hiddenTools.join(', ')})` : '';
        add({ level: 'ok', name, detail: `stdio, ${at}; starts and lists ${probe.tools.length} tool(s): ${probe.tools.join(', ') || 'none'}${hidden}` });
      } else {
        add({
          level: 'fail',
          name,
          detail: `stdio, ${at}: ${probe.reason}`,
          fix: 'run its command by hand as the user Latchkey runs as, with only PATH, HOME and its "env" set: it must answer MCP on stdout and log only to stderr',
        });
      }
      continue;
    }
    const probe = await probeHttpServer(server, HTTP_TIMEOUT_MS);
    if (probe.ok) {
      add({ level: 'ok', name, detail: `http, ${at}; answers initialize with HTTP ${probe.status}${probe.serverName !== undefined ? ` (server "${probe.serverName}")` : ''}` });
    } else {
      add({
        level: 'fail',
        name,
        detail: `http, ${at}: ${probe.reason}`,
        fix: probe.status === 401 || probe.status === 403 ? 'set the key it expects in its "headers"' : 'start it, or point its "url" at its Streamable HTTP endpoint (often …/mcp)',
      });
    }
  }
}

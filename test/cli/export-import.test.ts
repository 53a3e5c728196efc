import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { EXPORT_MANIFEST } from '../../src/cli/transfer.js';
import type { AuditEvent } from '../../src/store/types.js';
import { Daemon, freePort } from '../e2e/daemon.js';
import { captureIo } from '../helpers/cli-io.js';
import {
  http,
  introspect,
  obtainTokens,
  openConsent,
  postConsent,
  PIN,
  refresh,
  register,
  startHarness,
  type Harness,
  type RegisteredClient,
  type TokenBody,
} from '../helpers/http-harness.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * `latchkey export` and `latchkey import` move a whole installation between the files and
 * PostgreSQL, both ways, and the same connector keeps working on the new backend: its access
 * token, its refresh token (and reuse detection of the one it rotated), a consent page opened
 * before the move, the owner's session, the audit log. Imports refuse a store that holds
 * anything (unless --force) and a store a daemon is using.
 */

const PASSWORD = 'hunter2-db-password';

let db: TestPostgres;
const cleanup: string[] = [];
const harnesses: Harness[] = [];

beforeAll(async () => {
  db = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  for (const h of harnesses) await h.close().catch(() => undefined);
  await db?.close();
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
}, 180_000);

const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  cleanup.push(dir);
  return dir;
};

/** A fresh database's URL, carrying a password (the test server trusts every local user, so any works). */
async function database(): Promise<string> {
  const url = new URL(await db.createDatabase());
  url.password = PASSWORD;
  return url.toString();
}

async function open(env: Record<string, string>): Promise<Harness> {
  const h = await startHarness(env);
  harnesses.push(h);
  return h;
}

async function close(h: Harness): Promise<void> {
  harnesses.splice(harnesses.indexOf(h), 1);
  await h.close();
}

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; text: string }> {
  const io = captureIo({ env: { LOG_LEVEL: 'silent', ...env }, cwd: tempDir('latchkey-cwd-') });
  const code = await runCli(args, io);
  const text = io.text();
  expect(text).not.toContain(PASSWORD);
  return { code, text };
}

/** Cookie value of the owner's session after signing in (the harness is https: cookies by hand). */
async function adminSession(h: Harness): Promise<string> {
  const form = /name="csrf" value="([^"]+)"/.exec((await http(h).get('/admin')).text)?.[1] ?? '';
  const login = await http(h).post('/admin/login').set('Cookie', `__Host-latchkey_admin_login=${form}`).type('form').send({ csrf: form, pin: PIN });
  return ([] as string[]).concat(login.headers['set-cookie'] ?? []).find((c) => c.startsWith('__Host-latchkey_admin='))?.split(';')[0] ?? '';
}

interface Connector {
  client: RegisteredClient;
  first: TokenBody;
  current: TokenBody;
  pending: { consent: string; csrf: string };
  adminCookie: string;
  /** The whole audit log before the move, newest first. */
  events: AuditEvent[];
}

/** A connected client as a host keeps it: a rotated refresh token, a consent page open, an owner signed in, audit events. */
async function connect(h: Harness): Promise<Connector> {
  const client = await register(h);
  const first = await obtainTokens(h, client);
  const current = (await refresh(h, client, first.refresh_token ?? '')).body as TokenBody;
  expect(current.refresh_token).toBeDefined();
  const page = await openConsent(h, client);
  const adminCookie = await adminSession(h);
  const events: AuditEvent[] = [
    { at: h.clock.ms - 2 * 86_400_000, type: 'client.registered', actor: 'system', clientId: client.client_id, clientName: 'claudeai' },
    { at: h.clock.ms, type: 'grant.approved', actor: 'pin', clientId: client.client_id, ip: '203.0.113.9', detail: { scopes: ['read'], refreshable: true } },
    { at: h.clock.ms, type: 'grant.approved', actor: 'pin', clientId: client.client_id, detail: { n: 2 } },
  ];
  for (const e of events) await h.services.backend.audit.append(e);
  // Everything the log holds by now: what the flow above recorded (registration, approval,
  // refresh, the daemon's start) and the events added by hand.
  const logged = await h.services.backend.audit.list({ limit: 1000 });
  expect(logged).toEqual(expect.arrayContaining(events));
  return { client, first, current, pending: { consent: page.consent, csrf: page.csrf }, adminCookie, events: logged };
}

/** On the new backend, the connector goes on as if nothing happened. */
async function stillConnected(h: Harness, c: Connector): Promise<void> {
  expect((await introspect(h, c.current.access_token)).active).toBe(true);
  expect((await http(h).get('/admin').set('Cookie', c.adminCookie)).text).toContain('action="/admin/logout"');
  // The consent page opened before the move is approved after it: same signing key, same client.
  const approved = await postConsent(h, { consent: c.pending.consent, csrf: c.pending.csrf, pin: PIN, decision: 'approve' });
  expect(approved.status).toBe(303);
  // Every event from before the move is there, unchanged; the new backend adds its own (its start, this approval).
  const after = await h.services.backend.audit.list({ limit: 1000 });
  expect(after).toEqual(expect.arrayContaining(c.events));
  expect(after.length).toBeGreaterThan(c.events.length);
  const next = await refresh(h, c.client, c.current.refresh_token ?? '');
  expect(next.status).toBe(200);
  // The token rotated before the move is still recognised: reusing it is theft, and revokes the grant.
  h.clock.advance(3_600_000);
  expect((await refresh(h, c.client, c.first.refresh_token ?? '')).body).toMatchObject({ error: 'invalid_grant' });
  expect((await introspect(h, (next.body as TokenBody).access_token)).active).toBe(false);
}

describe('files to PostgreSQL and back', () => {
  it('moves a file installation into PostgreSQL: tokens, rotation history, consent page, owner session, audit log', async () => {
    const dataDir = tempDir('latchkey-files-');
    const source = await open({ OAUTH_DATA_DIR: dataDir });
    const c = await connect(source);
    // Moved while the daemon still runs: the export reads the files as a restart would.
    const target = path.join(tempDir('latchkey-export-'), 'moved');
    const exported = await cli(['export', target], { OAUTH_DATA_DIR: dataDir });
    expect(exported).toMatchObject({ code: 0 });
    expect(exported.text).toContain('1 clients, 2 access tokens, 2 refresh tokens');
    expect(exported.text).toContain(`${c.events.length} audit events and the signing key`);
    await close(source);
    expect(statSync(target).mode & 0o777).toBe(0o700);
    for (const f of readdirSync(target).filter((n) => statSync(path.join(target, n)).isFile())) expect(statSync(path.join(target, f)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path.join(target, EXPORT_MANIFEST), 'utf8'))).toMatchObject({ format: 'latchkey-export', from: 'files', consentKey: true });

    const url = await database();
    const imported = await cli(['import', target], { OAUTH_DATABASE_URL: url });
    expect(imported).toMatchObject({ code: 0 });
    expect(imported.text).toContain('now holds 1 clients');

    const moved = await open({ OAUTH_DATABASE_URL: url });
    expect(moved.services.backend.kind).toBe('postgres');
    moved.clock.ms = source.clock.ms;
    await stillConnected(moved, c);
    await close(moved);
  });

  it('moves a PostgreSQL installation into the files', async () => {
    const url = await database();
    const source = await open({ OAUTH_DATABASE_URL: url });
    const c = await connect(source);
    const target = path.join(tempDir('latchkey-export-'), 'moved');
    expect(await cli(['export', target], { OAUTH_DATABASE_URL: url })).toMatchObject({ code: 0 });
    await close(source);

    const dataDir = path.join(tempDir('latchkey-files-'), 'data');
    const imported = await cli(['import', target], { OAUTH_DATA_DIR: dataDir });
    expect(imported).toMatchObject({ code: 0 });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);

    const moved = await open({ OAUTH_DATA_DIR: dataDir });
    expect(moved.services.backend.kind).toBe('files');
    moved.clock.ms = source.clock.ms;
    await stillConnected(moved, c);
    await close(moved);
  });
});

describe('refusals', () => {
  /** An export of a small installation (one client), from the files. */
  async function anExport(): Promise<{ dir: string; clientId: string }> {
    const dataDir = tempDir('latchkey-files-');
    const h = await open({ OAUTH_DATA_DIR: dataDir });
    const client = await register(h);
    await close(h);
    const dir = path.join(tempDir('latchkey-export-'), 'export');
    expect(await cli(['export', dir], { OAUTH_DATA_DIR: dataDir })).toMatchObject({ code: 0 });
    return { dir, clientId: client.client_id };
  }

  it('into files that hold anything, unless --force, which replaces them (a journal left by a crash too)', async () => {
    const { dir, clientId } = await anExport();
    // A daemon killed with -9 leaves its last changes in the journal, not yet in the snapshots.
    const root = tempDir('latchkey-killed-');
    const dataDir = path.join(root, 'data');
    const daemon = new Daemon({ port: await freePort(), dataDir, cwd: root, env: { OAUTH_PIN: PIN } });
    await daemon.start();
    const registered = await fetch(`${daemon.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], token_endpoint_auth_method: 'none' }),
    });
    const old = (await registered.json()) as { client_id: string };
    await daemon.stop('SIGKILL');
    expect(readdirSync(dataDir).some((n) => /^journal-\d+\.log$/.test(n))).toBe(true);
    const refused = await cli(['import', dir], { OAUTH_DATA_DIR: dataDir });
    expect(refused.code).toBe(1);
    expect(refused.text).toContain('already holds 1 clients');
    expect(refused.text).toContain('--force');
    expect(await cli(['import', dir, '--force'], { OAUTH_DATA_DIR: dataDir })).toMatchObject({ code: 0 });
    const after = await open({ OAUTH_DATA_DIR: dataDir });
    expect(await after.services.store.getClient(clientId)).toBeDefined();
    expect(await after.services.store.getClient(old.client_id)).toBeUndefined();
    await close(after);
  });

  it('into files a running daemon uses (its lock), whatever --force says', async () => {
    const { dir } = await anExport();
    const root = tempDir('latchkey-running-');
    const daemon = new Daemon({ port: await freePort(), dataDir: path.join(root, 'data'), cwd: root, env: { OAUTH_PIN: PIN } });
    await daemon.start();
    try {
      const refused = await cli(['import', dir, '--force'], { OAUTH_DATA_DIR: path.join(root, 'data') });
      expect(refused.code).toBe(1);
      expect(refused.text).toMatch(/another Latchkey \(pid \d+\) is already using .*; nothing was changed/);
    } finally {
      await daemon.stop();
    }
  });

  it('into a database that holds anything, unless --force; never while another Latchkey is connected to it', async () => {
    const { dir, clientId } = await anExport();
    const url = await database();
    const running = await open({ OAUTH_DATABASE_URL: url });
    const old = await register(running);
    const connected = await cli(['import', dir, '--force'], { OAUTH_DATABASE_URL: url });
    expect(connected.code).toBe(1);
    expect(connected.text).toMatch(/other Latchkey connection\(s\) to the PostgreSQL database 127\.0\.0\.1:\d+\/\w+ are open: stop every instance first/);
    await close(running);

    const refused = await cli(['import', dir], { OAUTH_DATABASE_URL: url });
    expect(refused.code).toBe(1);
    expect(refused.text).toContain('already holds 1 clients');
    expect(await cli(['import', dir, '--force'], { OAUTH_DATABASE_URL: url })).toMatchObject({ code: 0 });
    const after = await open({ OAUTH_DATABASE_URL: url });
    expect(await after.services.store.getClient(clientId)).toBeDefined();
    expect(await after.services.store.getClient(old.client_id)).toBeUndefined();
    await close(after);
  });

  it('an export into a directory that is not empty, and an import of anything but a whole export', async () => {
    const { dir } = await anExport();
    const dataDir = tempDir('latchkey-files-');
    const full = await cli(['export', dir], { OAUTH_DATA_DIR: dataDir });
    expect(full.code).toBe(1);
    expect(full.text).toContain('is not empty');

    const notExport = await cli(['import', dataDir], { OAUTH_DATA_DIR: tempDir('latchkey-files-') });
    expect(notExport.code).toBe(1);
    expect(notExport.text).toContain(`no ${EXPORT_MANIFEST}`);

    // A record gone from the export: its manifest no longer matches, nothing is imported.
    writeFileSync(path.join(dir, 'clients.json'), '{"version":2,"seq":1,"records":[\n]}\n');
    const target = tempDir('latchkey-files-');
    const damaged = await cli(['import', dir], { OAUTH_DATA_DIR: target });
    expect(damaged.code).toBe(1);
    expect(damaged.text).toContain('does not hold what its manifest lists (clients)');
    expect(readdirSync(target)).toEqual([]);
  });

  it('an export of nothing', async () => {
    const none = await cli(['export', path.join(tempDir('latchkey-export-'), 'x')], { OAUTH_DATA_DIR: path.join(tempDir('latchkey-files-'), 'absent') });
    expect(none.code).toBe(1);
    expect(none.text).toContain('no Latchkey data in');
    const empty = await cli(['export', path.join(tempDir('latchkey-export-'), 'x')], { OAUTH_DATABASE_URL: await database() });
    expect(empty.code).toBe(1);
    expect(empty.text).toMatch(/the PostgreSQL database 127\.0\.0\.1:\d+\/\w+ holds no Latchkey schema/);
  });
});

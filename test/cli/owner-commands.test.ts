/**
 * The owner's commands against a running app over its real control socket: list clients and
 * grants, revoke, delete, lift a PIN lockout. Nothing here touches the store directly after
 * setup: every change goes through the daemon, as in production.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { hashSecret } from '../../src/crypto/secrets.js';
import { captureIo } from '../helpers/cli-io.js';
import { clientRecord, tokenPair } from '../helpers/records.js';
import { startApp, type RunningApp } from '../helpers/running-app.js';

const PIN = '24681357';
const SECRET = 'owner-commands-introspection-0123456789';

let app: RunningApp;

beforeEach(async () => {
  app = await startApp({ OAUTH_PIN: PIN, OAUTH_INTROSPECTION_SECRET: SECRET, OAUTH_PIN_MAX_FAILURES_PER_HOUR: '2' });
  const store = app.services.store;
  await store.putClient(clientRecord('client-claude', 'claudeai'));
  await store.putClient(clientRecord('client-chatgpt', 'ChatGPT'));
  for (const [client, grant, n] of [['client-claude', 'grant-1', 1], ['client-claude', 'grant-2', 2], ['client-chatgpt', 'grant-3', 3]] as const) {
    const { access, refresh } = tokenPair(client, grant, hashSecret(`access-${n}`), hashSecret(`refresh-${n}`));
    await store.putTokens(access, refresh);
  }
});
afterEach(() => app.stop());

const cli = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
  const io = captureIo({ env: app.env });
  const code = await runCli(args, io);
  return { code, out: io.stdout.join(''), err: io.stderr.join('') };
};

const active = async (token: string): Promise<boolean> => {
  const res = await fetch(`${app.baseUrl}/introspect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  return ((await res.json()) as { active: boolean }).active;
};

describe('the control socket', () => {
  it('is a socket only the daemon user can open, inside the private data directory', () => {
    const socket = path.join(app.dataDir, 'control.sock');
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(statSync(app.dataDir).mode & 0o777).toBe(0o700);
  });
});

describe('latchkey clients and grants', () => {
  it('lists clients with their live grants, as a table and as JSON', async () => {
    const table = await cli('clients');
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^CLIENT ID +NAME +GRANTS/);
    expect(table.out).toMatch(/client-claude +claudeai +2 /);
    expect(table.out).toMatch(/client-chatgpt +ChatGPT +1 /);
    const json = JSON.parse((await cli('clients', '--json')).out) as { client_id: string; live_grants: number }[];
    expect(json.map((c) => [c.client_id, c.live_grants]).sort()).toEqual([
      ['client-chatgpt', 1],
      ['client-claude', 2],
    ]);
  });

  it('lists grants, all or of one client', async () => {
    const all = JSON.parse((await cli('grants', '--json')).out) as { grant_id: string }[];
    expect(all.map((g) => g.grant_id).sort()).toEqual(['grant-1', 'grant-2', 'grant-3']);
    const one = await cli('grants', '--client', 'client-chatgpt');
    expect(one.out).toContain('grant-3');
    expect(one.out).not.toContain('grant-1');
  });
});

describe('latchkey revoke', () => {
  it('revokes one grant: its tokens stop working at once, the others keep working', async () => {
    expect(await active('access-1')).toBe(true);
    const res = await cli('revoke', 'grant-1');
    expect(res).toMatchObject({ code: 0, out: 'Revoked 1 grant: their tokens no longer work.\n' });
    expect(await active('access-1')).toBe(false);
    expect(await active('access-2')).toBe(true);
    expect((await cli('revoke', 'grant-1')).code).toBe(1);
  });

  it('revokes every grant of a client, which stays registered', async () => {
    expect((await cli('revoke', '--client', 'client-claude')).out).toContain('Revoked 2 grants');
    expect(await active('access-1')).toBe(false);
    expect(await active('access-2')).toBe(false);
    expect(await active('access-3')).toBe(true);
    expect((await cli('clients')).out).toMatch(/client-claude +claudeai +0 /);
  });

  it('refuses an ambiguous call with usage', async () => {
    expect((await cli('revoke')).code).toBe(2);
    expect((await cli('revoke', 'grant-1', '--client', 'client-claude')).code).toBe(2);
    expect((await cli('revoke', '--subject', 'github:1', '--client', 'client-claude')).code).toBe(2);
  });

  it('--subject revokes everything one person approved, across clients, and says so in the audit log', async () => {
    const alice = { subject: 'oidc:accounts.google.com:1098', email: 'alice@example.com', provider: 'oidc', emailVerified: true };
    for (const [client, grant, n] of [['client-claude', 'grant-a1', 'a1'], ['client-chatgpt', 'grant-a2', 'a2']] as const) {
      const { access, refresh } = tokenPair(client, grant, hashSecret(`access-${n}`), hashSecret(`refresh-${n}`));
      await app.services.store.putTokens({ ...access, approvedBy: alice }, { ...refresh, approvedBy: alice });
    }
    const grants = await cli('grants');
    expect(grants.out).toMatch(/grant-a1 +claudeai +mcp +.+ alice@example\.com +https:/);
    expect(grants.out).toMatch(/grant-1 +claudeai +mcp +.+ PIN +https:/);
    expect(JSON.parse((await cli('grants', '--json')).out)).toEqual(
      expect.arrayContaining([expect.objectContaining({ grant_id: 'grant-a2', approved_by: { subject: alice.subject, email: 'alice@example.com' } })]),
    );

    expect(await cli('revoke', '--subject', alice.subject)).toMatchObject({ code: 0, out: 'Revoked 2 grants: their tokens no longer work.\n' });
    expect(await active('access-a1')).toBe(false);
    expect(await active('access-a2')).toBe(false);
    expect(await active('access-1')).toBe(true);
    expect((await cli('revoke', '--subject', alice.subject)).code).toBe(1);

    const events = (await cli('audit', '--json')).out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const revoked = events.filter((e) => e.type === 'grant.revoked');
    expect(revoked).toEqual([expect.objectContaining({ actor: 'cli', subject: alice.subject, detail: expect.objectContaining({ reason: 'owner', records: 4 }) })]);
  });
});

describe('latchkey audit', () => {
  it('prints the log oldest first, one line each, as text or JSON lines; --since narrows it', async () => {
    await cli('revoke', 'grant-1');
    await cli('clients', 'delete', 'client-chatgpt');
    const text = await cli('audit');
    expect(text.code).toBe(0);
    const lines = text.out.trim().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[1])).toEqual(['config.loaded', 'grant.revoked', 'client.deleted']);
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  grant\.revoked +a grant of "claudeai" revoked by the owner$/);
    expect(lines[2]).toContain('the owner (command line) deleted "ChatGPT" and its 1 live grant(s)');

    const json = (await cli('audit', '--json', '--since', '1h')).out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; actor?: string; at: number });
    expect(json.map((e) => e.type)).toEqual(['config.loaded', 'grant.revoked', 'client.deleted']);
    expect(json[1]).toMatchObject({ actor: 'cli', clientId: 'client-claude', detail: { reason: 'owner', grant: 'grant-1' } });
    expect(json[0]).not.toHaveProperty('text');

    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect((await cli('audit', '--since', tomorrow)).out).toBe(`No event since ${tomorrow}T00:00:00Z.\n`);
  });

  it('refuses a --since it cannot read', async () => {
    const res = await cli('audit', '--since', 'yesterday');
    expect(res.code).toBe(2);
    expect(res.err).toContain('--since "yesterday" is neither a duration (30m, 24h, 7d, 2w) nor an ISO date');
  });
});

describe('latchkey clients delete', () => {
  it('deletes clients and everything issued to them', async () => {
    const res = await cli('clients', 'delete', 'client-claude', 'no-such-client');
    expect(res).toMatchObject({ code: 0, out: 'Deleted 1 client and everything issued to it.\n' });
    expect(await active('access-1')).toBe(false);
    const token = await fetch(`${app.baseUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'refresh-1', client_id: 'client-claude' }).toString(),
    });
    expect(token.status).toBe(401);
    expect(((await token.json()) as { error: string }).error).toBe('invalid_client');
  });
});

describe('latchkey unlock', () => {
  /** Opens a consent page in a fresh browser and posts a PIN: the answer's status. */
  const tryPin = async (pin: string): Promise<number> => {
    const reg = await fetch(`${app.baseUrl}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 't', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none' }),
    });
    const { client_id: clientId } = (await reg.json()) as { client_id: string };
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: clientId,
      redirect_uri: 'http://127.0.0.1:9/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    });
    const page = await fetch(`${app.baseUrl}/authorize?${query.toString()}`);
    const html = await page.text();
    const cookie = (page.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
    const consent = /name="consent" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const res = await fetch(`${app.baseUrl}/authorize/consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ consent, pin, decision: 'approve' }).toString(),
      redirect: 'manual',
    });
    return res.status;
  };

  it('lifts the lockout strangers caused, at once', async () => {
    expect(await tryPin('00000000')).toBe(401);
    expect(await tryPin('00000000')).toBe(429);
    expect(await tryPin(PIN)).toBe(429);
    const res = await cli('unlock');
    expect(res).toMatchObject({ code: 0, out: 'PIN lockouts lifted (2 recent wrong PINs forgotten).\n' });
    expect(await tryPin(PIN)).toBe(303);
  });
});

describe('without a running daemon', () => {
  it('says what to check, for every command that needs the daemon', async () => {
    await app.stop();
    for (const args of [['clients'], ['grants'], ['revoke', 'g'], ['unlock'], ['clients', 'delete', 'c']]) {
      const res = await cli(...args);
      expect(res.code).toBe(1);
      expect(res.err).toMatch(/no running Latchkey answers on .*control\.sock \(ENOENT\)/);
    }
    app = await startApp();
  });
});

describe('a control socket someone else could have made', () => {
  it('a daemon will not share a socket path another process answers on, nor use a directory others can write', async () => {
    const { createServer } = await import('node:net');
    const { mkdtempSync, chmodSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-sock-'));
    const squatted = path.join(dir, 'ctl.sock');
    const squatter = createServer(() => undefined);
    await new Promise<void>((resolve) => squatter.listen(squatted, resolve));
    try {
      await expect(startApp({ OAUTH_CONTROL_SOCKET: squatted })).rejects.toThrow(/another process answers on the control socket/);
    } finally {
      squatter.close();
    }
    const open = mkdtempSync(path.join(tmpdir(), 'latchkey-sock-open-'));
    chmodSync(open, 0o777);
    await expect(startApp({ OAUTH_CONTROL_SOCKET: path.join(open, 'ctl.sock') })).rejects.toThrow(/\(OAUTH_CONTROL_SOCKET\) is writable by group and others/);
  });

  const root = process.getuid?.() === 0;
  (root ? it : it.skip)('the CLI refuses to talk to a socket owned by another user (run as root: the test chowns it)', async () => {
    const { chownSync } = await import('node:fs');
    const socket = path.join(app.dataDir, 'control.sock');
    chownSync(socket, 101, 101);
    const res = await cli('revoke', '--client', 'client-claude');
    expect(res.code).toBe(1);
    expect(res.err).toMatch(/belongs to uid 101, neither you nor root: another user may have put it there, so nothing was sent to it/);
    expect(await active('access-1')).toBe(true);
  });
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config.js';
import { createServices, type Services } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';
import { hashSecret } from '../../src/crypto/secrets.js';
import { clientRecord, tokenPair } from '../helpers/records.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { freePort } from '../helpers/running-app.js';
import { EVERYTHING } from '../helpers/everything.js';

const PIN = '582046';
const SECRET = 'introspection-secret-0123456789';

/** Every test's services, closed after it (the audit log holds its day file open). */
const opened: Services[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.backend.close()));
});

async function setup(env: Record<string, string> = {}): Promise<{ services: Services; clock: FakeClock; dataDir: string }> {
  const clock = new FakeClock(Date.UTC(2026, 10, 22, 12));
  const config = loadConfig({
    OAUTH_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'latchkey-admin-')),
    OAUTH_PIN: PIN,
    OAUTH_INTROSPECTION_SECRET: SECRET,
    OAUTH_PIN_MAX_FAILURES_PER_HOUR: '18',
    OAUTH_ADMIN_IDLE_TIMEOUT: '600',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const services = await createServices(config, createLogger('silent'), { clock });
  opened.push(services);
  const { store } = services;
  await store.putClient(clientRecord('client-claude', 'claudeai', clock.ms - 86_400_000));
  await store.putClient(clientRecord('client-chatgpt', 'ChatGPT', clock.ms - 3_600_000));
  for (const [client, grant, n] of [['client-claude', 'grant-1', 1], ['client-claude', 'grant-2', 2], ['client-chatgpt', 'grant-3', 3]] as const) {
    const { access, refresh } = tokenPair(client, grant, hashSecret(`access-${n}`), hashSecret(`refresh-${n}`), clock.ms - 60_000);
    await store.putTokens(access, refresh);
  }
  return { services, clock, dataDir: config.store.dataDir };
}

const csrfOf = (html: string): string => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';

async function signIn(agent: ReturnType<typeof request.agent>, pin = PIN): Promise<request.Response> {
  const page = await agent.get('/admin');
  return agent.post('/admin/login').type('form').send({ csrf: csrfOf(page.text), pin });
}

async function active(services: Services, token: string): Promise<boolean> {
  const res = await request(services.app).post('/introspect').set('Authorization', `Bearer ${SECRET}`).type('form').send({ token });
  return (res.body as { active: boolean }).active;
}

describe('/admin', () => {
  it('shows the sign-in page with a strict, HttpOnly cookie, no caching and no framing', async () => {
    const { services } = await setup();
    const res = await request(services.app).get('/admin');
    expect(res.status).toBe(200);
    expect(res.text).toContain('<label for="pin">Your PIN</label>');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none';style-src 'self';img-src 'self';form-action 'self';frame-ancestors 'none';base-uri 'none'",
    );
    const cookie = (res.headers['set-cookie'] as unknown as string[])[0] ?? '';
    expect(cookie).toMatch(/^latchkey_admin_login=/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    // Path=/ so that over https the same cookie can carry the __Host- prefix.
    expect(cookie).toMatch(/Path=\/;/);
    expect(cookie).not.toMatch(/Secure/);
  });

  it('over https, names every cookie __Host- and marks it Secure, for path / and no domain', async () => {
    const { services } = await setup({ OAUTH_ISSUER_URL: 'https://auth.example.com' });
    const agent = request.agent(services.app);
    const page = await agent.get('/admin');
    const loginCookie = ((page.headers['set-cookie'] as unknown as string[])[0] ?? '');
    expect(loginCookie).toMatch(/^__Host-latchkey_admin_login=[^;]+; .*Path=\/;.*Secure/);
    expect(loginCookie).not.toMatch(/Domain=/i);
    const res = await request(services.app)
      .post('/admin/login')
      .set('Cookie', `__Host-latchkey_admin_login=${csrfOf(page.text)}`)
      .type('form')
      .send({ csrf: csrfOf(page.text), pin: PIN });
    expect(res.status).toBe(303);
    const set = res.headers['set-cookie'] as unknown as string[];
    const session = set.find((c) => c.startsWith('__Host-latchkey_admin=')) ?? '';
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/Secure/);
    expect(session).toMatch(/SameSite=Strict/);
    expect(session).toMatch(/Path=\/;/);
    expect(set.find((c) => c.startsWith('__Host-latchkey_device='))).toMatch(/Secure/);
  });

  it('takes only a sign-in form token this server issued: a self-made cookie and field are refused', async () => {
    const { services } = await setup();
    const chosen = 'attacker-chosen-token-0123456789abcdefghijk';
    const res = await request(services.app)
      .post('/admin/login')
      .set('Cookie', `latchkey_admin_login=${chosen}`)
      .type('form')
      .send({ csrf: chosen, pin: PIN });
    expect(res.status).toBe(403);
    expect(res.headers['set-cookie']?.toString() ?? '').not.toMatch(/latchkey_admin=/);
  });

  it('refuses a wrong PIN, and a sign-in without the form token', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    const wrong = await signIn(agent, '000000');
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('That PIN is not right. 4 attempts left on this form.');
    const forged = await request(services.app).post('/admin/login').type('form').send({ csrf: 'x', pin: PIN });
    expect(forged.status).toBe(403);
    expect(forged.headers['set-cookie']?.toString() ?? '').not.toMatch(/latchkey_admin=/);
  });

  it('counts wrong PINs on one form down to zero, re-showing the same form each time', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    let page = await agent.get('/admin');
    const messages: string[] = [];
    for (let i = 0; i < 5; i++) {
      page = await agent.post('/admin/login').type('form').send({ csrf: csrfOf(page.text), pin: `11111${i}` });
      messages.push(/That PIN is not right\. \d+ attempts? left|Too many wrong PINs on that form/.exec(page.text)?.[0] ?? page.text.slice(0, 80));
    }
    expect(messages).toEqual([
      'That PIN is not right. 4 attempts left',
      'That PIN is not right. 3 attempts left',
      'That PIN is not right. 2 attempts left',
      'That PIN is not right. 1 attempt left',
      'Too many wrong PINs on that form',
    ]);
  });

  it('pauses sign-in from one address once it has spent its share (a third) of the hourly PIN budget for new browsers', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    for (let i = 0; i < 6; i++) await signIn(agent, `00000${i}`);
    const locked = await signIn(agent, PIN);
    expect(locked.status).toBe(429);
    expect(locked.headers['retry-after']).toBeDefined();
    expect(locked.text).toContain('Too many wrong PINs');
  });

  it('lists clients with their live grants and the store counts after sign-in', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    const login = await signIn(agent);
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/admin');
    const page = await agent.get('/admin');
    expect(page.status).toBe(200);
    expect(page.text).toContain('claudeai');
    expect(page.text).toContain('ChatGPT');
    expect(page.text).toContain('claude.ai');
    expect(page.text.match(/action="\/admin\/grants\/revoke"/g)).toHaveLength(3);
    expect(page.text).toMatch(/<dt>Clients<\/dt><dd>2<\/dd>/);
    expect(page.text).toMatch(/<dt>Live grants<\/dt><dd>3<\/dd>/);
    expect(page.text).toContain('Healthy');
    expect(page.text).toContain('2026-11-21 12:00 UTC');
  });

  it('revokes one grant after confirmation, and its tokens stop introspecting at once', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    await signIn(agent);
    const csrf = csrfOf((await agent.get('/admin')).text);
    const confirm = await agent.post('/admin/grants/revoke').type('form').send({ csrf, grant_id: 'grant-1' });
    expect(confirm.status).toBe(200);
    expect(confirm.text).toContain('Revoke this grant?');
    expect(await active(services, 'access-1')).toBe(true);

    const done = await agent.post('/admin/grants/revoke').type('form').send({ csrf, grant_id: 'grant-1', confirm: 'yes' });
    expect(done.status).toBe(303);
    expect(done.headers.location).toBe('/admin?done=grant-revoked');
    expect(await active(services, 'access-1')).toBe(false);
    expect(await active(services, 'access-2')).toBe(true);
    expect((await agent.get('/admin?done=grant-revoked')).text).toContain('The grant was revoked.');
  });

  it('lists and revokes grants of a client known only by its metadata document URL', async () => {
    const { services, clock } = await setup();
    const cimdClient = 'https://app.example.com/oauth/client.json';
    const { access, refresh } = tokenPair(cimdClient, 'grant-cimd', hashSecret('access-cimd'), hashSecret('refresh-cimd'), clock.ms - 60_000);
    await services.store.putTokens(access, refresh);
    const agent = request.agent(services.app);
    await signIn(agent);
    const page = await agent.get('/admin');
    expect(page.text).toContain('App at app.example.com');
    expect(page.text).toContain('identified by its metadata document');
    expect(page.text).toContain('name="grant_id" value="grant-cimd"');
    expect(page.text).not.toContain(`name="client_id" value="${cimdClient}"`);

    const csrf = csrfOf(page.text);
    const done = await agent.post('/admin/grants/revoke').type('form').send({ csrf, grant_id: 'grant-cimd', confirm: 'yes' });
    expect(done.status).toBe(303);
    expect(await active(services, 'access-cimd')).toBe(false);
    expect((await agent.get('/admin')).text).not.toContain('App at app.example.com');
  });

  it('deletes a client and everything issued to it after confirmation', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    await signIn(agent);
    const csrf = csrfOf((await agent.get('/admin')).text);
    const confirm = await agent.post('/admin/clients/delete').type('form').send({ csrf, client_id: 'client-claude' });
    expect(confirm.text).toContain('Delete this client?');
    expect(confirm.text).toContain('2 live grants');
    const done = await agent.post('/admin/clients/delete').type('form').send({ csrf, client_id: 'client-claude', confirm: 'yes' });
    expect(done.status).toBe(303);
    expect(await services.store.getClient('client-claude')).toBeUndefined();
    expect(await active(services, 'access-1')).toBe(false);
    expect(await active(services, 'access-2')).toBe(false);
    expect(await active(services, 'access-3')).toBe(true);
  });

  it('refuses an action without the session CSRF token, or without a session', async () => {
    const { services } = await setup();
    const agent = request.agent(services.app);
    await signIn(agent);
    const forged = await agent.post('/admin/grants/revoke').type('form').send({ csrf: 'guess', grant_id: 'grant-1', confirm: 'yes' });
    expect(forged.status).toBe(403);
    const anonymous = await request(services.app).post('/admin/clients/delete').type('form').send({ client_id: 'client-claude', confirm: 'yes' });
    expect(anonymous.status).toBe(401);
    expect(await active(services, 'access-1')).toBe(true);
    expect(await services.store.getClient('client-claude')).toBeDefined();
  });

  it('ends the session after the idle timeout, and on sign-out', async () => {
    const { services, clock } = await setup();
    const agent = request.agent(services.app);
    await signIn(agent);
    clock.advance(500_000);
    expect((await agent.get('/admin')).text).toContain('Connected apps');
    clock.advance(601_000);
    const idle = await agent.get('/admin');
    expect(idle.text).toContain('Sign in');
    expect(idle.text).not.toContain('claudeai');

    await signIn(agent);
    const csrf = csrfOf((await agent.get('/admin')).text);
    expect((await agent.post('/admin/logout').type('form').send({ csrf })).status).toBe(303);
    expect((await agent.get('/admin')).text).toContain('Sign in');
  });

  it('keeps a session across a restart (sessions live in the backend, as hashes)', async () => {
    const { services, clock, dataDir } = await setup();
    const login = await request(services.app).get('/admin');
    const token = csrfOf(login.text);
    const signedIn = await request(services.app)
      .post('/admin/login')
      .set('Cookie', `latchkey_admin_login=${token}`)
      .type('form')
      .send({ csrf: token, pin: PIN });
    const session = /latchkey_admin=([^;]+)/.exec(((signedIn.headers['set-cookie'] as unknown as string[]) ?? []).join('\n'))?.[1] ?? '';
    expect(session).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await services.backend.close();

    const config = loadConfig({ OAUTH_DATA_DIR: dataDir, OAUTH_PIN: PIN, LOG_LEVEL: 'silent' });
    const again = await createServices(config, createLogger('silent'), { clock });
    const page = await request(again.app).get('/admin').set('Cookie', `latchkey_admin=${session}`);
    expect(page.text).toContain('Connected apps');
    // The stored entry is the session's hash, never the cookie itself.
    expect(JSON.stringify(await again.backend.kv.list('admin-session', clock.now()))).not.toContain(session);
    await again.backend.close();
  });

  it('pages its client list, newest first, and deletes every never-approved client at once after a confirmation', async () => {
    const { services, clock } = await setup();
    const store = services.store;
    for (let i = 0; i < 120; i++) await store.putClient(clientRecord(`flood-${String(i).padStart(3, '0')}`, `flood ${i}`, clock.ms - 1000 + i));
    await store.markClientApproved('client-claude', clock.ms);
    // In use (its tokens were exchanged), though it has no approval recorded.
    store.touchClient('client-chatgpt', clock.ms);
    const agent = request.agent(services.app);
    await signIn(agent);
    const first = await agent.get('/admin');
    expect(first.text).toContain('122 clients, page 1 of 3');
    expect(first.text).toContain('flood 119');
    expect(first.text).not.toContain('flood 69<');
    expect(first.text).toContain('href="/admin?page=2"');
    expect(first.text.length).toBeLessThan(200_000);
    const third = await agent.get('/admin?page=3');
    expect(third.text).toContain('client-claude');
    expect((await agent.get('/admin?page=999')).text).toContain('page 3 of 3');
    const unapproved = await agent.get('/admin?show=unapproved');
    expect(unapproved.text).toContain('Clients you never approved');
    expect(unapproved.text).not.toContain('>claudeai ');

    const csrf = csrfOf(first.text);
    const confirm = await agent.post('/admin/clients/delete-unapproved').type('form').send({ csrf });
    expect(confirm.text).toContain('Delete 120 never-approved clients?');
    expect(await store.clientCount()).toBe(122);
    const done = await agent.post('/admin/clients/delete-unapproved').type('form').send({ csrf, confirm: 'yes' });
    expect(done.status).toBe(303);
    // The approved client and the one with live grants (in use) stay.
    expect((await store.listClients()).map((c) => c.clientId).sort()).toEqual(['client-chatgpt', 'client-claude']);
    expect(await active(services, 'access-3')).toBe(true);
  });
});


/** The owner's page's article for one gateway server. */
function serverSection(page: string, name: string): string {
  return new RegExp(`<article class="client" aria-label="MCP server ${name}">([\\s\\S]*?)</article>`).exec(page)?.[1] ?? '';
}

describe('/admin with the MCP gateway', () => {
  let services: Services | undefined;
  afterEach(async () => {
    await services?.gateway?.close();
    await services?.store.close();
    services = undefined;
  });

  it('shows each gateway server: kind, connector URL, live sessions and processes, last error', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-admin-gateway-'));
    const file = path.join(dir, 'gateway.json');
    const deadPort = await freePort();
    writeFileSync(
      file,
      JSON.stringify({
        mcpServers: {
          everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
          notes: { url: `http://127.0.0.1:${deadPort}/mcp`, headers: { 'X-Api-Key': 'notes-upstream-key' } },
        },
      }),
    );
    const started = await setup({ OAUTH_GATEWAY_CONFIG: file });
    services = started.services;
    const { clock } = started;
    const issuer = services.ctx.issuer;
    // A token for each server, as the consent flow would have issued them.
    for (const [n, server] of [[1, 'everything'], [2, 'notes']] as const) {
      const { access } = tokenPair('client-claude', `grant-gw-${n}`, hashSecret(`gateway-${n}`), hashSecret(`gateway-refresh-${n}`), clock.ms - 60_000);
      await services.store.putTokens({ ...access, resource: `${issuer}/${server}/mcp` }, undefined);
    }
    const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'admin-test', version: '1' } } };
    const app = services.app;
    const mcp = (server: string, token: string): request.Test =>
      request(app)
        .post(`/${server}/mcp`)
        .set('Authorization', `Bearer ${token}`)
        .set('Accept', 'application/json, text/event-stream')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify(initialize));

    const agent = request.agent(services.app);
    await signIn(agent);
    const before = (await agent.get('/admin')).text;
    expect(before).toContain('MCP servers behind the gateway');
    expect(before).toContain(`Connector URL <strong class="host-inline">${issuer}/everything/mcp</strong>`);
    expect(before).toContain(`Connector URL <strong class="host-inline">${issuer}/notes/mcp</strong>`);
    expect(before).toContain('stdio command, one process per session');
    expect(before).toContain('(HTTP server)');

    const opened = await mcp('everything', 'gateway-1');
    expect(opened.status).toBe(200);
    expect(opened.text).toContain('"serverInfo"');
    const sessionId = String(opened.headers['mcp-session-id']);
    clock.advance(60_000);
    const refused = await mcp('notes', 'gateway-2');
    expect(refused.status).toBe(502);

    const page = (await agent.get('/admin')).text;
    const everything = serverSection(page, 'everything');
    expect(everything).toMatch(/<dt>Live sessions<\/dt><dd>1<\/dd>/);
    expect(everything).toMatch(/<dt>Processes<\/dt><dd>1<\/dd>/);
    expect(everything).toMatch(/<dt>Last error<\/dt><dd>none since start<\/dd>/);
    const notes = serverSection(page, 'notes');
    expect(notes).toMatch(/<dt>Live sessions<\/dt><dd>kept by the server<\/dd>/);
    expect(notes).toContain('<dt>Last error</dt><dd>2026-11-22 12:01 UTC: unreachable (ECONNREFUSED)</dd>');
    // The upstream's configured header value is a secret: never on the page.
    expect(page).not.toContain('notes-upstream-key');

    const ended = await request(app).delete('/everything/mcp').set('Authorization', 'Bearer gateway-1').set('Mcp-Session-Id', sessionId);
    expect(ended.status).toBe(200);
    const after = serverSection((await agent.get('/admin')).text, 'everything');
    expect(after).toMatch(/<dt>Live sessions<\/dt><dd>0<\/dd>/);
    expect(after).toMatch(/<dt>Processes<\/dt><dd>0<\/dd>/);
  });

  it('has no gateway section when no gateway is configured', async () => {
    const started = await setup();
    services = started.services;
    const agent = request.agent(services.app);
    await signIn(agent);
    expect((await agent.get('/admin')).text).not.toContain('MCP servers behind the gateway');
  });
});

import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/run.js';
import { hashPin } from '../../src/crypto/pin-hash.js';
import { captureIo } from '../helpers/cli-io.js';
import { clientRecord } from '../helpers/records.js';
import { startOidcIdp, type OidcIdp } from '../helpers/oidc-idp.js';
import { freePort, startApp, type RunningApp } from '../helpers/running-app.js';
import { waitFor } from '../gateway/helpers/proc.js';
import { startUpstream, type UpstreamServer } from '../gateway/helpers/upstream-server.js';
import { EVERYTHING } from '../helpers/everything.js';

const line = (text: string, name: string): string => text.split('\n').find((l) => l.includes(` ${name}: `)) ?? '';

describe('latchkey doctor', () => {
  let app: RunningApp;
  beforeEach(async () => {
    app = await startApp({ OAUTH_PIN_HASH: await hashPin('482913'), OAUTH_INTROSPECTION_SECRET: 'x'.repeat(32) });
    await app.services.store.putClient(clientRecord('c1', 'claudeai'));
  });
  afterEach(() => app.stop());

  it('passes on a healthy deployment and prints every check', async () => {
    const io = captureIo({ env: app.env });
    expect(await runCli(['doctor'], io)).toBe(0);
    const out = io.text();
    expect(line(out, 'config')).toMatch(/ok/);
    expect(line(out, 'pin')).toMatch(/ok .*OAUTH_PIN_HASH/);
    expect(line(out, 'data dir')).toMatch(/ok .*mode 0700/);
    // The running daemon's registration sits in the journal until the next compaction.
    expect(line(out, 'clients.json')).toMatch(/ok .*parses, 0 record\(s\) in the snapshot, mode 0600/);
    expect(line(out, 'journal')).toMatch(/ok .*1 file\(s\), 1 record\(s\) not yet compacted/);
    expect(line(out, 'consent.key')).toMatch(/ok/);
    expect(line(out, 'daemon')).toMatch(/ok .*answers at http:\/\/127\.0\.0\.1:\d+ with metadata/);
    expect(line(out, 'store')).toMatch(/ok/);
    expect(line(out, 'issuer URL')).toMatch(/ok .*matching metadata/);
    // A local issuer is only a warning, with the fix spelled out.
    expect(out).toMatch(/warn {2}issuer: .*\n {8}fix: set OAUTH_ISSUER_URL/);
    expect(out).toMatch(/0 failure\(s\)/);
  });

  it('reads the settings from --env-file, which wins over the shell', async () => {
    const envFile = path.join(mkdtempSync(path.join(tmpdir(), 'latchkey-env-')), 'latchkey.env');
    writeFileSync(envFile, Object.entries(app.env).map(([k, v]) => `${k}=${v}`).join('\n'));
    const io = captureIo({ env: { OAUTH_DATA_DIR: '/nonexistent', PORT: '1' } });
    expect(await runCli(['doctor', '--env-file', envFile], io)).toBe(0);
    expect(io.text()).toContain(`data in ${app.dataDir}`);
  });

  it('fails with a fix for a corrupt file, loose modes, and a plain-text PIN is a warning', async () => {
    writeFileSync(path.join(app.dataDir, 'tokens.json'), '{"version":1,"records":[{"hash":1}');
    chmodSync(path.join(app.dataDir, 'clients.json'), 0o644);
    const env: Record<string, string> = { ...app.env, OAUTH_PIN: '246810' };
    delete env.OAUTH_PIN_HASH;
    const io = captureIo({ env });
    expect(await runCli(['doctor'], io)).toBe(1);
    const out = io.text();
    expect(line(out, 'tokens.json')).toMatch(/FAIL .*not valid JSON/);
    expect(out).toMatch(/tokens\.json: .*\n +fix: restore it from a backup/);
    expect(line(out, 'clients.json')).toMatch(/FAIL .*mode 644/);
    expect(out).toContain(`fix: chmod 600 ${path.join(app.dataDir, 'clients.json')}`);
    expect(line(out, 'pin')).toMatch(/warn .*plain PIN/);
  });

  it('warns when TRUST_PROXY counts more proxies than one', async () => {
    const io = captureIo({ env: { ...app.env, TRUST_PROXY: '2' } });
    await runCli(['doctor'], io);
    expect(line(io.text(), 'trust proxy')).toMatch(/warn .*TRUST_PROXY=2 trusts 2 proxies/);
  });

  describe('TRUST_PROXY unset behind an https issuer', () => {
    // An https issuer on a closed loopback port: doctor's probe of the public URL stays on this machine.
    const doctorWith = async (env: Record<string, string>): Promise<string> => {
      const io = captureIo({ env: { ...app.env, OAUTH_ISSUER_URL: 'https://127.0.0.1:1', ...env } });
      await runCli(['doctor'], io);
      return io.text();
    };

    it('warns when HOST is loopback: every client looks like 127.0.0.1 to the rate limits', async () => {
      const out = await doctorWith({ HOST: '127.0.0.1' });
      expect(line(out, 'trust proxy')).toMatch(/warn .*TRUST_PROXY is off but the daemon listens on loopback behind an https URL/);
      expect(out).toMatch(/trust proxy: .*\n +fix: .*set TRUST_PROXY=loopback/);
    });

    it('warns when HOST is not loopback: the port is reachable around the proxy', async () => {
      const out = await doctorWith({ HOST: '0.0.0.0' });
      expect(line(out, 'trust proxy')).toMatch(/warn .*HOST=0\.0\.0\.0 is reachable from other machines and TRUST_PROXY is off/);
      expect(out).toMatch(/trust proxy: .*\n +fix: run the proxy \(cloudflared\) on this machine with HOST=127\.0\.0\.1 and TRUST_PROXY=loopback/);
    });

    it('is satisfied once TRUST_PROXY names the proxy', async () => {
      for (const host of ['127.0.0.1', '0.0.0.0']) expect(line(await doctorWith({ HOST: host, TRUST_PROXY: 'loopback' }), 'trust proxy')).toMatch(/ok .*TRUST_PROXY=loopback/);
    });
  });

  it('warns about unreadable records, before and after the daemon kept them aside', async () => {
    writeFileSync(path.join(app.dataDir, 'tokens.json'), '{"version":1,"records":[{"hash":1},{"hash":"h","clientId":"c","grantId":"g","scopes":[],"resource":"r","issuedAt":1,"expiresAt":2}]}');
    writeFileSync(path.join(app.dataDir, 'clients.json.rejected-2026-11-25T10-00-00-000Z.jsonl'), '{"clientId":42}\n', { mode: 0o600 });
    const io = captureIo({ env: app.env });
    expect(await runCli(['doctor'], io)).toBe(0);
    const out = io.text();
    expect(line(out, 'tokens.json')).toMatch(/warn .*1 record\(s\) read, 1 unreadable: line 1 does not match the schema/);
    expect(line(out, 'clients.json.rejected-2026-11-25T10-00-00-000Z.jsonl')).toMatch(/warn .*records that could not be read were kept here/);
    expect(out).toContain(`then delete ${path.join(app.dataDir, 'clients.json.rejected-2026-11-25T10-00-00-000Z.jsonl')}`);
  });

  it('warns about a torn last journal record and fails on a damaged one, with what to do', async () => {
    await app.services.store.putClient(clientRecord('c2', 'chatgpt'));
    const journal = readdirSync(app.dataDir).find((n) => /^journal-\d+\.log$/.test(n)) ?? '';
    const file = path.join(app.dataDir, journal);
    const [first = '', second = ''] = readFileSync(file, 'utf8').split('\n');
    // Line 1 damaged in place, line 2 intact, then half a record: a crash mid-append.
    writeFileSync(file, `${first.replace('c1', 'cX')}\n${second}\n${second.slice(0, 40)}`);
    const io = captureIo({ env: app.env });
    expect(await runCli(['doctor'], io)).toBe(1);
    const lines = io.stdout.join('').split('\n').filter((l) => l.includes(journal));
    expect(lines.join('\n')).toMatch(/FAIL .*1 damaged record\(s\) \(line 1\)/);
    expect(lines.join('\n')).toMatch(/warn .*last record \(line 3\) was cut short by a crash/);
    expect(io.stdout.join('')).toMatch(/nothing to do: the daemon drops it at start/);
  });

  it('fails when the data directory is open to other users', async () => {
    chmodSync(app.dataDir, 0o755);
    const io = captureIo({ env: app.env });
    expect(await runCli(['doctor'], io)).toBe(1);
    expect(line(io.text(), 'data dir')).toMatch(/FAIL .*mode 755/);
  });

  it('fails when the running daemon serves another issuer than the configured one', async () => {
    const io = captureIo({ env: { ...app.env, OAUTH_ISSUER_URL: `http://localhost:${app.port}` } });
    expect(await runCli(['doctor'], io)).toBe(1);
    expect(line(io.text(), 'daemon')).toMatch(/FAIL .*names the issuer "http:\/\/127\.0\.0\.1:\d+", not "http:\/\/localhost:\d+"/);
    expect(io.text()).toContain('fix: restart Latchkey after changing the env file');
  });

  it('names the variable when the config is invalid', async () => {
    const io = captureIo({ env: { ...app.env, OAUTH_ISSUER_URL: 'https://auth.example.com/' } });
    expect(await runCli(['doctor'], io)).toBe(1);
    expect(io.text()).toMatch(/FAIL {2}config: OAUTH_ISSUER_URL: .*trailing slash/);
  });

  it('warns when the daemon is not running and the issuer does not answer', async () => {
    await app.stop();
    const io = captureIo({ env: app.env });
    expect(await runCli(['doctor'], io)).toBe(0);
    expect(line(io.text(), 'daemon')).toMatch(/warn .*ECONNREFUSED/);
    expect(io.text()).toContain('fix: start it (systemctl start latchkey)');
    app = await startApp({ OAUTH_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'latchkey-app-')) });
  });
});

describe('latchkey doctor: sign-in with a provider', () => {
  const SECRET = 'doctor-oidc-client-secret-0123456789';
  let idp: OidcIdp;
  let app: RunningApp;
  beforeAll(async () => {
    idp = await startOidcIdp({ accounts: [], clients: [{ clientId: 'latchkey', clientSecret: SECRET, redirectUris: ['http://127.0.0.1:1/login/callback/oidc'] }] });
    app = await startApp({ OAUTH_INTROSPECTION_SECRET: 'x'.repeat(32) });
  });
  afterAll(async () => {
    await app.stop();
    await idp.stop();
  });

  const doctorWith = async (env: Record<string, string>): Promise<{ code: number; out: string }> => {
    const io = captureIo({ env: { ...app.env, ...env } });
    const code = await runCli(['doctor'], io);
    return { code, out: io.text() };
  };
  const oidc = (issuer: string): Record<string, string> => ({
    OAUTH_OIDC_ISSUER: issuer,
    OAUTH_OIDC_CLIENT_ID: 'latchkey',
    OAUTH_OIDC_CLIENT_SECRET: SECRET,
    OAUTH_OIDC_NAME: 'Test IdP',
    OAUTH_ALLOWED_DOMAINS: 'example.com',
  });

  it('checks discovery (exact issuer, PKCE S256) and names the callback URL to register', async () => {
    const { out } = await doctorWith(oidc(idp.issuer));
    expect(line(out, 'sign-in')).toMatch(/ok .*offers oidc; allowed: 0 e-mail\(s\), 1 domain\(s\)/);
    expect(line(out, 'oidc discovery')).toMatch(new RegExp(`ok .*Test IdP answers at ${idp.issuer} with exactly that issuer, the authorization code flow and PKCE S256`));
    expect(line(out, 'oidc callback')).toContain(`register exactly ${app.baseUrl}/login/callback/oidc as a redirect URI at Test IdP`);
    expect(line(out, 'oidc callback route')).toMatch(new RegExp(`ok .*${app.baseUrl}/login/callback/oidc reaches Latchkey`));
  });

  it('fails when the public URL answers with Latchkey\'s metadata but sends /login/ elsewhere (a tunnel routing only some paths)', async () => {
    const front: Server = createServer((req, res) => {
      const base = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
      if (req.url === '/.well-known/oauth-authorization-server') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: base, authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`, registration_endpoint: `${base}/register`, code_challenge_methods_supported: ['S256'] }));
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', () => resolve()));
    const base = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
    try {
      const { code, out } = await doctorWith({ ...oidc(idp.issuer), OAUTH_ISSUER_URL: base });
      expect(code).toBe(1);
      expect(line(out, 'issuer URL')).toMatch(/ok .*matching metadata/);
      expect(line(out, 'oidc callback route')).toContain(`FAIL  oidc callback route: ${base}/login/callback/oidc answers HTTP 404, not with Latchkey's page`);
      expect(out).toMatch(/oidc callback route: .*\n +fix: route \/login\/ on this hostname to Latchkey/);
    } finally {
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    }
  });

  /** A discovery document as a misconfigured provider (or a wrong OAUTH_OIDC_ISSUER) serves it. */
  async function withDocument(document: (base: string) => object, run: (issuer: string) => Promise<void>): Promise<void> {
    const server: Server = createServer((req, res) => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      res.writeHead(req.url === '/.well-known/openid-configuration' ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(document(base)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      await run(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  it('fails, saying what the provider announced, when the issuer is not exactly the announced one', async () => {
    await withDocument(
      (base) => ({ issuer: `${base}/application/o/latchkey/`, authorization_endpoint: `${base}/auth`, code_challenge_methods_supported: ['S256'] }),
      async (issuer) => {
        const { code, out } = await doctorWith(oidc(issuer));
        expect(code).toBe(1);
        expect(line(out, 'oidc discovery')).toContain(`FAIL  oidc discovery: Test IdP at ${issuer}: discovery: the provider's issuer is "${issuer}/application/o/latchkey/", not the configured OAUTH_OIDC_ISSUER "${issuer}/"`);
        expect(out).toMatch(/oidc discovery: .*\n +fix: check OAUTH_OIDC_ISSUER: it must be exactly the issuer the provider announces/);
      },
    );
  });

  it('fails when the provider does not announce PKCE S256', async () => {
    await withDocument(
      (base) => ({ issuer: base, authorization_endpoint: `${base}/auth`, response_types_supported: ['code'] }),
      async (issuer) => {
        const { code, out } = await doctorWith(oidc(issuer));
        expect(code).toBe(1);
        expect(line(out, 'oidc discovery')).toContain('does not announce PKCE S256 (code_challenge_methods_supported: absent)');
      },
    );
  });

  it('fails when the provider cannot be reached', async () => {
    const { code, out } = await doctorWith(oidc(`http://127.0.0.1:${await freePort()}`));
    expect(code).toBe(1);
    expect(line(out, 'oidc discovery')).toMatch(/FAIL .*fetch failed: ECONNREFUSED/);
  });

  it('names the GitHub callback URL, and says when only the PIN is configured', async () => {
    const github = await doctorWith({ OAUTH_GITHUB_CLIENT_ID: 'Iv1.doctor', OAUTH_GITHUB_CLIENT_SECRET: 'github-doctor-secret', OAUTH_ALLOWED_GITHUB_USERS: 'octocat' });
    expect(line(github.out, 'github callback')).toContain(`must be exactly ${app.baseUrl}/login/callback/github (at https://github.com)`);
    expect(line((await doctorWith({})).out, 'sign-in')).toMatch(/ok .*with the PIN only/);
  });
});


/** Live processes whose environment carries `marker`: every process a gateway server's group ran. */
function processesWith(marker: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('latchkey doctor with OAUTH_GATEWAY_CONFIG', () => {
  let app: RunningApp;
  let upstream: UpstreamServer;
  let dir: string;
  beforeAll(async () => {
    app = await startApp();
    upstream = await startUpstream();
    dir = mkdtempSync(path.join(tmpdir(), 'latchkey-doctor-gateway-'));
  });
  afterAll(async () => {
    await upstream?.stop();
    await app?.stop();
  });

  const writeGateway = (servers: object): string => {
    const file = path.join(dir, `gateway-${randomUUID()}.json`);
    writeFileSync(file, JSON.stringify({ mcpServers: servers }));
    return file;
  };
  /** What a shell running doctor has: PATH, HOME, and here also a secret of Latchkey's. */
  const shellEnv = (file: string): Record<string, string> => ({
    ...app.env,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    OAUTH_INTROSPECTION_SECRET: 'doctor-secret-never-in-a-child-0123',
    OAUTH_GATEWAY_CONFIG: file,
  });

  it('starts each stdio server once, lists its tools after the tool policy, and says why a broken one failed', async () => {
    const marker = `DOCTOR_RUN=${randomUUID()}`;
    const [markerName = '', markerValue = ''] = marker.split('=');
    const deadPort = await freePort();
    const file = writeGateway({
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: { [markerName]: markerValue }, tools: { deny: ['toggle-*', 'get-tiny-image'] }, alwaysAllow: ['echo'] },
      // Prints the names of the variables it got, then exits before answering.
      'env-check': {
        command: process.execPath,
        args: ['-e', "process.stderr.write(Object.keys(process.env).sort().join(',') + '\\n'); process.exit(3)"],
        env: { GATEWAY_TEST_VAR: 'configured', [markerName]: markerValue },
      },
      missing: { command: 'latchkey-no-such-mcp-server', env: { [markerName]: markerValue } },
      notes: { url: upstream.url, headers: { 'X-Api-Key': 'upstream-key-value' } },
      down: { url: `http://127.0.0.1:${deadPort}/mcp` },
    });
    const io = captureIo({ env: shellEnv(file) });
    expect(await runCli(['doctor'], io)).toBe(1);
    const out = io.text();

    expect(line(out, 'gateway file')).toMatch(/ok .*parses: 5 server\(s\); ignores keys other apps use: everything\.alwaysAllow/);
    const everything = line(out, 'gateway "everything"');
    expect(everything).toMatch(new RegExp(`ok .*stdio, connector URL ${app.baseUrl}/everything/mcp; starts and lists \\d+ tool\\(s\\): `));
    expect(everything).toMatch(/[:,] echo,/);
    expect(everything).toMatch(/, get-sum[,( ]/);
    expect(everything).toMatch(/hidden by its tool policy: .*get-tiny-image/);
    expect(everything.split('hidden')[0]).not.toMatch(/toggle-|get-tiny-image/);

    // The child saw its configured env plus PATH and HOME: none of Latchkey's variables.
    expect(line(out, 'gateway "env-check"')).toContain(
      `FAIL  gateway "env-check": stdio, connector URL ${app.baseUrl}/env-check/mcp: the process exited with code 3 before answering; its stderr ended with: ${markerName},GATEWAY_TEST_VAR,HOME,PATH`,
    );
    expect(out).toMatch(/gateway "env-check": .*\n +fix: run its command by hand as the user Latchkey runs as, with only PATH, HOME and its "env" set/);
    expect(line(out, 'gateway "missing"')).toMatch(/FAIL .*could not start \(command not found: check "command" and PATH\)/);

    expect(line(out, 'gateway "notes"')).toMatch(new RegExp(`ok .*http, connector URL ${app.baseUrl}/notes/mcp; answers initialize with HTTP 200 \\(server "upstream"\\)`));
    expect(upstream.calls).toContain('initialize');
    expect(upstream.seen.at(-1)?.['x-api-key']).toBe('upstream-key-value');
    expect(line(out, 'gateway "down"')).toMatch(/FAIL .*unreachable \(ECONNREFUSED\)/);
    expect(out).toMatch(/gateway "down": .*\n +fix: start it, or point its "url"/);
    // Neither a configured value nor Latchkey's secret is printed.
    expect(out).not.toContain('upstream-key-value');
    expect(out).not.toContain(markerValue);
    expect(out).not.toContain('doctor-secret-never-in-a-child');

    // Every process doctor started, supervisors and their watchers included, is gone.
    await waitFor(() => processesWith(marker).length === 0, 'the gateway servers doctor started to end');
  });

  it('names the server and the key of a bad gateway file in one line, and starts nothing', async () => {
    const file = writeGateway({ files: { command: 'npx', args: 'server-filesystem /srv' } });
    const io = captureIo({ env: shellEnv(file) });
    expect(await runCli(['doctor'], io)).toBe(1);
    const out = io.text();
    expect(line(out, 'gateway file')).toBe(`  FAIL  gateway file: OAUTH_GATEWAY_CONFIG (${file}): server "files", key "args": expected an array of strings`);
    expect(out).not.toContain('gateway "files"');
  });
});

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { SCHEMA_VERSION } from '../../src/store/file/snapshot.js';
import { BODIES, PIN, http, introspect, obtainTokens, refresh, register, useHarness, type TokenBody } from '../helpers/http-harness.js';

async function readDataDir(dir: string): Promise<{ name: string; text: string; mode: number }[]> {
  const out: { name: string; text: string; mode: number }[] = [];
  for (const name of await fsp.readdir(dir)) {
    const file = path.join(dir, name);
    const stat = await fsp.stat(file);
    if (stat.isFile()) out.push({ name, text: await fsp.readFile(file, 'utf8'), mode: stat.mode & 0o777 });
  }
  return out;
}

describe('the data directory after a full flow', () => {
  const s = useHarness();

  it('holds credentials only as hashes', async () => {
    const confidential = await register(s.h, BODIES.chatgpt);
    const publicClient = await register(s.h, BODIES.claude);
    const first = await obtainTokens(s.h, confidential, { scope: 'read write' });
    const rotated = (await refresh(s.h, confidential, first.refresh_token ?? '')).body as TokenBody;
    const other = await obtainTokens(s.h, publicClient);
    expect(rotated.access_token).toBeDefined();

    const secrets: Record<string, string> = {
      'client secret': confidential.client_secret ?? '',
      'first access token': first.access_token,
      'first refresh token': first.refresh_token ?? '',
      'authorization code': first.approval.code,
      'rotated access token': rotated.access_token,
      'rotated refresh token': rotated.refresh_token ?? '',
      'public access token': other.access_token,
      'public refresh token': other.refresh_token ?? '',
      'public code': other.approval.code,
      'code verifier': first.approval.verifier,
      PIN,
    };
    for (const value of Object.values(secrets)) expect(value.length).toBeGreaterThanOrEqual(8);

    // While running, the changes sit in the journal: it holds no raw credential either.
    const running = await readDataDir(s.h.dir);
    expect(running.some((f) => /^journal-\d+\.log$/.test(f.name) && f.text.length > 0)).toBe(true);
    for (const file of running) {
      for (const [what, value] of Object.entries(secrets)) {
        if (file.text.includes(value)) throw new Error(`${file.name} contains the raw ${what}`);
      }
      expect(file.mode).toBe(0o600);
    }

    // A clean stop folds the journal into the snapshot files.
    await s.h.services.store.close();
    const files = await readDataDir(s.h.dir);
    expect(files.map((f) => f.name)).toEqual(
      expect.arrayContaining(['clients.json', 'codes.json', 'tokens.json', 'refresh_tokens.json']),
    );
    for (const file of files) {
      for (const [what, value] of Object.entries(secrets)) {
        if (file.text.includes(value)) throw new Error(`${file.name} contains the raw ${what}`);
      }
      expect(file.mode).toBe(0o600);
    }
    expect((await fsp.stat(s.h.dir)).mode & 0o777).toBe(0o700);

    // Each collection file is versioned and actually holds the records, by hash.
    for (const name of ['clients.json', 'codes.json', 'tokens.json', 'refresh_tokens.json']) {
      const parsed = JSON.parse(files.find((f) => f.name === name)?.text ?? '{}') as { version?: unknown; records?: unknown[] };
      expect(parsed.version).toBe(SCHEMA_VERSION);
      expect(Array.isArray(parsed.records) && parsed.records.length > 0).toBe(true);
    }
    // The raw client_id is not a secret and is stored as is.
    expect(files.find((f) => f.name === 'clients.json')?.text).toContain(confidential.client_id);

    // Still everything works after a restart from these files.
    await s.h.restart();
    expect((await introspect(s.h, rotated.access_token)).active).toBe(true);
    expect((await refresh(s.h, confidential, rotated.refresh_token ?? '')).status).toBe(200);
    expect((await http(s.h).get('/oauth/stats')).body).toMatchObject({ clients: 2 });
  });
});

describe('data kept aside at startup', () => {
  const s = useHarness();

  it('is reported by /healthz (still 200: the store works) and on /admin until the owner deletes it', async () => {
    const client = await register(s.h, BODIES.claude);
    await obtainTokens(s.h, client);
    await s.h.services.store.close();
    const file = path.join(s.h.dir, 'refresh_tokens.json');
    const text = await fsp.readFile(file, 'utf8');
    await fsp.writeFile(file, text.replace(/"clientId":"[^"]+"/, '"clientId":null'), { mode: 0o600 });
    await s.h.restart();

    const health = await http(s.h).get('/healthz');
    expect(health.status).toBe(200);
    const kept = (health.body as { setAside?: string[] }).setAside ?? [];
    expect(kept).toEqual([expect.stringMatching(/^refresh_tokens\.json\.rejected-[0-9TZ-]+\.jsonl$/)]);
    // The other collections loaded as they were.
    expect((await http(s.h).get('/oauth/stats')).body).toMatchObject({ clients: 1, access_tokens: 1, refresh_tokens: 0 });

    // The harness's issuer is https: its __Host- cookies are Secure, so they are sent by hand.
    const cookieOf = (res: request.Response, name: string): string =>
      ([] as string[]).concat((res.headers['set-cookie'] as string[] | undefined) ?? []).find((c) => c.startsWith(`${name}=`))?.split(';')[0] ?? '';
    const login = await request(s.h.handler).get('/admin');
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.text)?.[1] ?? '';
    const signedIn = await request(s.h.handler).post('/admin/login').set('Cookie', cookieOf(login, '__Host-latchkey_admin_login')).type('form').send({ csrf, pin: PIN });
    expect(signedIn.status).toBe(303);
    const page = await request(s.h.handler).get('/admin').set('Cookie', cookieOf(signedIn, '__Host-latchkey_admin'));
    expect(page.text).toContain(`Unreadable data kept aside: ${kept[0] ?? ''}`);

    await fsp.unlink(path.join(s.h.dir, kept[0] ?? ''));
    expect((await http(s.h).get('/healthz')).body).toEqual({ status: 'ok' });
  });
});

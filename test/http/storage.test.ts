import { promises as fsp } from 'node:fs';
import path from 'node:path';
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

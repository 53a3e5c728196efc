import { promises as fsp } from 'node:fs';
import { readDataDir } from '../../src/store/file/data-dir.js';
import type { FileStore } from '../../src/store/file/file-store.js';
import { faultyFs, type FaultCode } from '../helpers/faulty-fs.js';
import {
  BODIES,
  INTROSPECTION_SECRET,
  PIN,
  exchange,
  http,
  introspect,
  obtainTokens,
  openConsent,
  postConsent,
  refresh,
  register,
  startHarness,
  approve,
  type Harness,
  type TokenBody,
} from '../helpers/http-harness.js';

/**
 * Disk faults seen from the wire (issue 4, section 3): with write, fsync or rename failing
 * as ENOSPC, EIO or EACCES, every request that changes state gets 503 temporarily_unavailable
 * with Retry-After and no credential, nothing half-written reaches the data directory,
 * /healthz reports the fault, and service resumes by itself once the fault clears.
 */

/**
 * What the data directory holds, read exactly as a restart would (snapshots plus journal):
 * every collection as sorted records, and whether any file had a torn or damaged record.
 */
async function readDataFiles(dir: string): Promise<{ collections: Record<string, unknown[]>; torn: number; corrupt: number; bad: string[] }> {
  const state = await readDataDir(dir);
  const collections: Record<string, unknown[]> = {};
  for (const [name, map] of Object.entries(state.collections)) collections[name] = [...map.entries()].sort(([a], [b]) => a.localeCompare(b));
  return {
    collections,
    torn: state.journals.filter((j) => j.torn).length,
    corrupt: state.journals.reduce((n, j) => n + j.corrupt.length, 0),
    bad: Object.entries(state.snapshots).filter(([, s]) => s.status !== 'ok').map(([name]) => name),
  };
}

/** The harness's file store, whose journal these tests fold into the snapshots. */
function fileStore(h: Harness): FileStore {
  if (h.services.backend.kind !== 'files') throw new Error('these tests need the file backend');
  return h.services.backend.store;
}

function expectUnavailable(res: { status: number; headers: Record<string, string>; body: unknown; text: string }): void {
  expect(res.status).toBe(503);
  expect(res.headers['retry-after']).toMatch(/^\d+$/);
  expect(res.body).toMatchObject({ error: 'temporarily_unavailable', error_description: expect.any(String) });
  // No credential is handed out that is not on disk.
  expect(res.text).not.toMatch(/access_token|refresh_token|client_id|client_secret/);
}

const CASES: [FaultCode, 'write' | 'fsync'][] = [];
for (const code of ['ENOSPC', 'EIO', 'EACCES'] as const) for (const op of ['write', 'fsync'] as const) CASES.push([code, op]);

describe('disk faults over HTTP', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it.each(CASES)('%s on %s: 503 + Retry-After, nothing half-written, /healthz 503, then heals by itself', async (code, op) => {
    const faulty = faultyFs();
    h = await startHarness({}, { fs: faulty.fs });
    const client = await register(h, BODIES.claude);
    const tokens = await obtainTokens(h, client);
    const pending = await approve(h, client);
    const page = await openConsent(h, client);
    const before = await readDataFiles(h.dir);

    faulty.fail(op, code);
    expectUnavailable(await http(h).post('/register').send(BODIES.chatgpt));
    expectUnavailable(await exchange(h, client, pending));
    expectUnavailable(await refresh(h, client, tokens.refresh_token ?? ''));
    const revoked = await http(h).post('/revoke').type('form').send({ token: tokens.access_token, client_id: client.client_id });
    expectUnavailable(revoked);
    // The consent page answers with a page, not JSON, but the same status and Retry-After.
    const consent = await postConsent(h, { consent: page.consent, csrf: page.csrf, pin: PIN, decision: 'approve' });
    expect(consent.status).toBe(503);
    expect(consent.headers['retry-after']).toMatch(/^\d+$/);
    expect(consent.headers.location).toBeUndefined();

    const health = await http(h).get('/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toEqual({ status: 'error', store: code });

    // On disk: exactly what was acknowledged before the fault, every file whole, no litter.
    expect(await readDataFiles(h.dir)).toEqual(before);
    expect((await fsp.readdir(h.dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // What was refused is not served from memory either.
    expect((await introspect(h, tokens.access_token)).active).toBe(true);

    faulty.fail(undefined);
    expect((await http(h).get('/healthz')).status).toBe(200);
    // The refused exchange did not consume the code, the refused refresh did not rotate.
    const exchanged = await exchange(h, client, pending);
    expect(exchanged.status).toBe(200);
    expect((await refresh(h, client, tokens.refresh_token ?? '')).status).toBe(200);
    expect((await http(h).post('/register').send(BODIES.chatgpt)).status).toBe(201);
    expect((await introspect(h, (exchanged.body as TokenBody).access_token)).active).toBe(true);

    // And all of it survives a restart.
    await h.restart();
    expect((await introspect(h, (exchanged.body as TokenBody).access_token)).active).toBe(true);
    expect((await http(h).get('/oauth/stats')).body).toMatchObject({ clients: 2 });
  });

  it.each(['rename', 'fsyncDir', 'open'] as const)(
    'EIO on %s (used only by background compaction): requests still succeed, /healthz warns, nothing is lost',
    async (op) => {
      const faulty = faultyFs();
      h = await startHarness({}, { fs: faulty.fs });
      const client = await register(h, BODIES.claude);
      faulty.fail(op, 'EIO');
      await fileStore(h).compact();
      // Writes go to the journal, which needs none of these calls.
      const tokens = await obtainTokens(h, client);
      const second = await register(h, BODIES.chatgpt);
      const health = await http(h).get('/healthz');
      expect(health.status).toBe(200);
      expect(health.body).toEqual({ status: 'ok', compaction: 'EIO' });
      expect((await readDataFiles(h.dir)).bad).toEqual([]);
      expect((await fsp.readdir(h.dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);

      faulty.fail(undefined);
      await fileStore(h).compact();
      expect((await http(h).get('/healthz')).body).toEqual({ status: 'ok' });
      await h.restart();
      expect((await introspect(h, tokens.access_token)).active).toBe(true);
      expect((await http(h).get('/oauth/stats')).body).toMatchObject({ clients: 2 });
      expect(second.client_id).toBeTruthy();
    },
  );

  it('introspection keeps answering while the disk is sick: reads need no writes', async () => {
    const faulty = faultyFs();
    h = await startHarness({}, { fs: faulty.fs });
    const client = await register(h, BODIES.claude);
    const tokens = await obtainTokens(h, client);
    faulty.fail('write', 'EIO');
    const res = await http(h).post('/introspect').set('Authorization', `Bearer ${INTROSPECTION_SECRET}`).type('form').send({ token: tokens.access_token });
    expect(res.status).toBe(200);
    expect((res.body as { active: boolean }).active).toBe(true);
    faulty.fail(undefined);
  });
});

import express from 'express';
import { rateLimit } from 'express-rate-limit';
import request from 'supertest';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { MemoryCounterStore } from '../../src/store/file/counter-store.js';
import { PostgresBackend } from '../../src/store/postgres/postgres-backend.js';
import { CounterRateLimitStore } from '../../src/http/rate-limit-store.js';
import type { CounterStore } from '../../src/store/types.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { silentLogger } from '../helpers/unit-context.js';

/**
 * The express-rate-limit store over the backend's counters, driven by express-rate-limit
 * itself: on PostgreSQL, two instances (each its own app, limiter and pool) share one
 * budget; resetting one client's key leaves every other client's alone.
 */

let db: TestPostgres;
const backends: PostgresBackend[] = [];
beforeAll(async () => {
  db = await startTestPostgres();
}, 180_000);
afterAll(async () => {
  for (const b of backends) await b.close();
  await db?.close();
}, 180_000);

/** An app limited to `limit` requests a minute per x-client header, counting in `counters`. */
function limitedApp(counters: CounterStore, limit: number): { app: express.Express; store: CounterRateLimitStore } {
  const store = new CounterRateLimitStore(counters, { prefix: 'rl:test:' });
  const app = express();
  app.use(
    rateLimit({
      windowMs: 60_000,
      limit,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      keyGenerator: (req) => req.get('x-client') ?? 'anonymous',
      store,
    }),
  );
  app.get('/', (_req, res) => {
    res.json({ ok: true });
  });
  return { app, store };
}

const statuses = async (app: express.Express, client: string, n: number): Promise<number[]> => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await request(app).get('/').set('x-client', client)).status);
  return out;
};

describe('CounterRateLimitStore', () => {
  it('on PostgreSQL, two instances share one limit per client', async () => {
    const a = (await PostgresBackend.open({ url: db.url, logger: silentLogger(), random: cryptoRandom })).backend;
    const b = (await PostgresBackend.open({ url: db.url, logger: silentLogger(), random: cryptoRandom })).backend;
    backends.push(a, b);
    const first = limitedApp(a.counters, 5);
    const second = limitedApp(b.counters, 5);
    expect(await statuses(first.app, '203.0.113.7', 3)).toEqual([200, 200, 200]);
    expect(await statuses(second.app, '203.0.113.7', 3)).toEqual([200, 200, 429]);
    expect(await statuses(first.app, '203.0.113.7', 1)).toEqual([429]);
    // Another client has its own budget.
    expect(await statuses(second.app, '203.0.113.70', 1)).toEqual([200]);
    const limited = await request(first.app).get('/').set('x-client', '203.0.113.7');
    expect(limited.status).toBe(429);
    expect(limited.headers.ratelimit).toMatch(/r=0/);

    // Resetting one client (through either instance) frees it everywhere, and only it.
    await second.store.resetKey('203.0.113.7');
    expect(await statuses(first.app, '203.0.113.7', 1)).toEqual([200]);
    expect((await first.store.get('203.0.113.70'))?.totalHits).toBe(1);
  });

  it('on the files, counts in memory with the same rules', async () => {
    const { app, store } = limitedApp(new MemoryCounterStore(), 2);
    expect(await statuses(app, 'x', 3)).toEqual([200, 200, 429]);
    await store.resetAll();
    expect(await statuses(app, 'x', 1)).toEqual([200]);
  });
});

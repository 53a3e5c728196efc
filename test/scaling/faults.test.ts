import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOAD_ENV, Ledger, clientKnown, introspect, refreshChain, runLoad, stats, type Chain } from '../crash/load.js';
import { Daemon, freePort } from '../e2e/daemon.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

/**
 * Faults with two real daemons on one real PostgreSQL, under the crash tests' load
 * (registrations, code exchanges through the consent flow, refreshes) spread round-robin over
 * both, the consent page of one approved on the other:
 * - kill -9 of one instance at a random moment, again and again: nothing acknowledged is lost,
 *   nothing appears beyond what was acknowledged or in flight;
 * - PostgreSQL stopped and started again under load: 503 with Retry-After while it is down
 *   (never a 500: the load fails on any other 5xx), /healthz says why, service comes back by
 *   itself without restarting Latchkey, and nothing acknowledged is lost.
 */

const WORKERS = 6;
const KILLS = 6;
const OUTAGES = 3;

let db: TestPostgres;
let root: string;
/** One ledger for both tests: the database keeps everything the first acknowledged. */
const ledger = new Ledger();
const checked = { clients: 0, tokens: new Map<Chain, number>() };
let daemons: [Daemon, Daemon];

beforeAll(async () => {
  db = await startTestPostgres({ own: true });
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-pg-faults-'));
  const ports = [await freePort(), await freePort()];
  const env = {
    OAUTH_DATABASE_URL: db.url,
    OAUTH_ISSUER_URL: `http://127.0.0.1:${ports[0] ?? 0}`,
    ...LOAD_ENV,
  };
  daemons = [0, 1].map((i) => new Daemon({ port: ports[i] ?? 0, dataDir: path.join(root, `instance-${i}`), cwd: root, env })) as [Daemon, Daemon];
  for (const d of daemons) await d.start();
}, 180_000);

afterAll(async () => {
  for (const d of daemons ?? []) await d.kill();
  await db?.close();
  await fsp.rm(root, { recursive: true, force: true });
}, 180_000);

/** Round-robin over the instances, as a load balancer does. */
function roundRobin(): () => string {
  let next = 0;
  return () => daemons[next++ % daemons.length]?.baseUrl ?? '';
}

/** Checks, through `base`, what the ledger says was acknowledged: every client, every access token, and the counts' bounds. */
async function verify(base: string, from: { clients: number; tokens: Map<Chain, number> }): Promise<void> {
  for (const clientId of ledger.clients.slice(from.clients)) {
    if (!(await clientKnown(base, clientId))) throw new Error(`acknowledged client ${clientId} is gone`);
  }
  from.clients = ledger.clients.length;
  for (const chain of ledger.chains) {
    for (const t of chain.accessTokens.slice(from.tokens.get(chain) ?? 0)) {
      if (!(await introspect(base, t))) throw new Error('an acknowledged access token is no longer active');
    }
    from.tokens.set(chain, chain.accessTokens.length);
  }
  const s = await stats(base);
  expect(s.clients).toBeGreaterThanOrEqual(ledger.clients.length);
  expect(s.clients).toBeLessThanOrEqual(ledger.clients.length + ledger.unknownRegistrations);
  expect(s.access_tokens).toBeGreaterThanOrEqual(ledger.accessTokens);
  expect(s.access_tokens).toBeLessThanOrEqual(ledger.accessTokens + ledger.unknownIssuances);
}

/** Every chain refreshes (through `target`): acknowledged rotations survived; a lost one is covered by the grace rule. */
async function refreshAll(target: () => string): Promise<void> {
  for (const chain of ledger.chains) {
    const before = chain.refreshToken;
    await refreshChain(target, ledger, chain);
    if (chain.refreshToken === before) throw new Error('an acknowledged refresh token no longer works');
  }
}

/** A pause of random length, so a fault lands at a different moment of the load each time. */
const randomPause = (): Promise<void> => new Promise((r) => setTimeout(r, 200 + Math.floor(Math.random() * 500)));

/** Polls until `condition` holds; a generous deadline, only so a broken run ends. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it(`loses nothing acknowledged across ${KILLS} kill -9 of one of two instances under load`, async () => {
  const target = roundRobin();
  for (let round = 0; round < KILLS; round++) {
    const victim = daemons[round % 2] as Daemon;
    const survivor = daemons[(round + 1) % 2] as Daemon;
    let stopping = false;
    const load = runLoad(target, ledger, WORKERS, () => stopping);
    await randomPause();
    const exit = await victim.stop('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    // The survivor keeps serving the load (half of it now meets a refused connection).
    const served = ledger.chains.length + ledger.clients.length;
    await until(() => ledger.chains.length + ledger.clients.length > served + 3, 'the survivor to serve');
    stopping = true;
    await load;
    await verify(survivor.baseUrl, checked);
    await victim.start();
  }
  await refreshAll(target);
  checked.clients = 0;
  checked.tokens.clear();
  await verify(daemons[0].baseUrl, checked);
  expect(ledger.clients.length).toBeGreaterThan(KILLS);
  expect(ledger.chains.length).toBeGreaterThan(KILLS);
  // PostgreSQL never failed: nothing was refused as unavailable.
  expect(ledger.unavailable).toBe(0);
  process.stderr.write(`kill -9 on PostgreSQL: ${KILLS} kills, ${ledger.clients.length} clients and ${ledger.accessTokens} access tokens acknowledged\n`);
}, 240_000);

it(`answers 503 (never 500) while PostgreSQL is down, loses nothing acknowledged, and recovers by itself, ${OUTAGES} times`, async () => {
  const { stop, start } = db;
  if (!stop || !start) throw new Error('an outage needs a server the tests started');
  const target = roundRobin();
  const chainsBefore = ledger.chains.length;
  for (let round = 0; round < OUTAGES; round++) {
    let stopping = false;
    // Any 5xx but 503 (or a 503 without Retry-After) rejects the load, and the test with it.
    const load = runLoad(target, ledger, WORKERS, () => stopping);
    await randomPause();
    await stop();
    const refused = ledger.unavailable;
    await until(() => ledger.unavailable > refused + 10, 'requests refused with 503 during the outage');
    for (const d of daemons) {
      const res = await fetch(`${d.baseUrl}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'error', store: 'database unreachable' });
    }
    await start();
    // Service resumes by itself: new acknowledgements on both instances, no restart.
    const acknowledged = ledger.clients.length;
    await until(() => ledger.clients.length > acknowledged + 4, 'registrations acknowledged after the outage');
    stopping = true;
    await load;
    for (const d of daemons) {
      expect(d.running).toBe(true);
      expect((await fetch(`${d.baseUrl}/healthz`)).status).toBe(200);
    }
    await verify(daemons[round % 2]?.baseUrl ?? '', checked);
  }
  await refreshAll(target);
  checked.clients = 0;
  checked.tokens.clear();
  await verify(daemons[1].baseUrl, checked);
  expect(ledger.chains.length - chainsBefore).toBeGreaterThan(OUTAGES);
  for (const d of daemons) expect(d.log()).not.toMatch(/"statusCode":500/);
  process.stderr.write(
    `PostgreSQL outages: ${OUTAGES} stops, ${ledger.unavailable} requests answered 503, ${ledger.clients.length} clients and ${ledger.accessTokens} access tokens acknowledged, all kept\n`,
  );
}, 240_000);

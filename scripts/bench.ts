/**
 * `npm run bench`: the throughput of Latchkey's endpoints against a bare Express app on the
 * same machine, in one run (issue 4, section 2). Each scenario gets a fresh server process
 * (dist-scripts/scripts/bench-server.js) and a fresh data directory, with durable writes on;
 * autocannon drives it with 50 connections for 10 s after a warm-up, and every response body
 * is checked. W0 runs right before each scenario, and the ratio is to that run. Prints a
 * markdown table, then startup time and memory with 100,000 live tokens.
 *
 * Then the gateway rows (scripts/bench-gateway.ts): G1, MCP tool calls to an HTTP MCP server
 * directly and through the gateway; G2, through the gateway to a stdio server.
 *
 * W1–W4 run again on PostgreSQL (issue 13): with one instance, and with two instances on one
 * database behind the same autocannon run (its connections alternate between them). The
 * database is a throwaway cluster started as the tests start theirs (test/helpers/postgres.ts:
 * initdb and pg_ctl, fsync on), or a fresh database on the server of OAUTH_TEST_DATABASE_URL.
 *
 * BENCH_DURATION and BENCH_WARMUP (seconds) shorten a run while working on this script,
 * BENCH_GATEWAY_ROUNDS (3) sets how many paired runs each G row takes, and
 * BENCH_ONLY=<prefix> (e.g. W2, or G) runs only the scenarios whose name starts with it, and
 * BENCH_BACKEND=files|postgres only the scenarios of one backend (postgres: no G rows), and
 * BENCH_CPU_PROF=<dir> writes a CPU profile of each server process into <dir>.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { startTestPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { gatewayRows } from './bench-gateway.js';
import { spawnBenchServer, stopBenchServer } from './bench-process.js';
import { BENCH_REDIRECT, BENCH_VERIFIER } from './bench-shared.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const DAEMON = path.join(ROOT, 'dist', 'index.js');
const CONNECTIONS = 50;
const DURATION = Number(process.env.BENCH_DURATION ?? '10');
const WARMUP = Number(process.env.BENCH_WARMUP ?? '3');
const GATEWAY_ROUNDS = Number(process.env.BENCH_GATEWAY_ROUNDS ?? '3');
const SECRET = 'bench-introspection-secret-0123456789';
const CLAUDE_REGISTRATION = JSON.stringify({
  client_name: 'claudeai',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  scope: 'claudeai',
  redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
});
/** 200 bytes of form for the ceiling, about what a token request weighs. */
const W0_BODY = `grant_type=authorization_code&code=${'c'.repeat(43)}&redirect_uri=${encodeURIComponent(BENCH_REDIRECT)}&code_verifier=${'v'.repeat(43)}&client_id=x`.padEnd(200, 'x');

interface Scenario {
  name: string;
  mode: 'w0' | 'latchkey';
  env: Record<string, string>;
  path: string;
  contentType: string;
  headers?: Record<string, string>;
  /** The body of request number `i` (distinct codes and refresh tokens per request). */
  body: (i: number) => string;
  expect: { status: number; contains: string };
  /** On PostgreSQL, with this many instances on one database; absent: the files. */
  postgres?: { instances: 1 | 2 };
}

interface Result {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  badBodies: number;
}

/** Codes and refresh tokens to prepare: more than the fastest run can use up. */
const SUPPLY = 150_000;
/** The same on PostgreSQL, where a run uses far fewer (and preparing costs a round trip each). */
const POSTGRES_SUPPLY = 60_000;

function scenarios(): Scenario[] {
  const form = 'application/x-www-form-urlencoded';
  const w2 = (live: number, name: string): Scenario => ({
    name,
    mode: 'latchkey',
    env: { BENCH_CODES: String(SUPPLY), BENCH_LIVE_TOKENS: String(live) },
    path: '/token',
    contentType: form,
    body: (i) =>
      new URLSearchParams({ grant_type: 'authorization_code', code: `code-${i}`, code_verifier: BENCH_VERIFIER, redirect_uri: BENCH_REDIRECT, client_id: 'bench-client' }).toString(),
    expect: { status: 200, contains: '"access_token"' },
  });
  const w3 = (live: number, name: string): Scenario => ({
    name,
    mode: 'latchkey',
    env: { BENCH_REFRESH_TOKENS: String(SUPPLY), BENCH_LIVE_TOKENS: String(live) },
    path: '/token',
    contentType: form,
    body: (i) => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: `refresh-${i}`, client_id: 'bench-client' }).toString(),
    expect: { status: 200, contains: '"refresh_token"' },
  });
  const w1: Scenario = { name: 'W1 POST /register (Claude body)', mode: 'latchkey', env: {}, path: '/register', contentType: 'application/json', body: () => CLAUDE_REGISTRATION, expect: { status: 201, contains: '"client_id"' } };
  const w4: Scenario = {
    name: 'W4 POST /introspect (live token)',
    mode: 'latchkey',
    env: {},
    path: '/introspect',
    contentType: form,
    headers: { authorization: `Bearer ${SECRET}` },
    body: () => 'token=introspected',
    expect: { status: 200, contains: '"active":true' },
  };
  const core = [w1, w2(0, 'W2 code exchange + PKCE'), w3(0, 'W3 refresh with rotation'), w4];
  const onPostgres = (instances: 1 | 2): Scenario[] =>
    core.map((sc) => ({
      ...sc,
      name: `${sc.name}, PostgreSQL, ${instances === 1 ? '1 instance' : '2 instances'}`,
      env: Object.fromEntries(Object.entries(sc.env).map(([k, v]) => [k, k === 'BENCH_LIVE_TOKENS' ? v : String(Math.min(Number(v), POSTGRES_SUPPLY))])),
      postgres: { instances },
    }));
  return [
    { name: 'W0 bare Express, 200-byte form POST', mode: 'w0', env: {}, path: '/echo', contentType: form, body: () => W0_BODY, expect: { status: 200, contains: '{"ok":true}' } },
    ...core,
    w2(1_000, 'W2 with 1,000 live tokens'),
    w2(100_000, 'W2 with 100,000 live tokens'),
    w3(1_000, 'W3 with 1,000 live tokens'),
    w3(100_000, 'W3 with 100,000 live tokens'),
    ...onPostgres(1),
    ...onPostgres(2),
  ];
}

function latchkeyEnv(dataDir: string): Record<string, string> {
  return {
    OAUTH_DATA_DIR: dataDir,
    OAUTH_ISSUER_URL: 'http://127.0.0.1:3000',
    OAUTH_PIN: '24681357',
    OAUTH_INTROSPECTION_SECRET: SECRET,
    OAUTH_REGISTRATION_RATE_LIMIT: '1000000000',
    OAUTH_TOKEN_RATE_LIMIT: '1000000000',
    OAUTH_INTROSPECTION_RATE_LIMIT: '1000000000',
    OAUTH_MAX_CLIENTS: '100000000',
    LOG_LEVEL: 'silent',
  };
}

function startServer(scenario: Scenario, dataDir: string, extraEnv: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  return spawnBenchServer({ BENCH_MODE: scenario.mode, ...latchkeyEnv(dataDir), ...scenario.env, ...extraEnv });
}

async function drive(scenario: Scenario, ports: number[], seconds: number, next: { i: number }): Promise<autocannon.Result & { badBodies: number }> {
  let badBodies = 0;
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const result = await autocannon({
    // Several URLs: autocannon gives connection i to URL i mod n (its README documents arrays;
    // its types do not yet), so two instances share the load evenly.
    url: (urls.length === 1 ? urls[0] : urls) as string,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: scenario.path,
        headers: { 'content-type': scenario.contentType, ...scenario.headers },
        setupRequest: (req) => ({ ...req, body: scenario.body(next.i++) }),
        onResponse: (status, body) => {
          if (status !== scenario.expect.status || !body.includes(scenario.expect.contains)) badBodies++;
        },
      },
    ],
  });
  return { ...result, badBodies };
}

/** The PostgreSQL server of the PostgreSQL scenarios, started by the first of them. */
let postgres: TestPostgres | undefined;

async function run(scenario: Scenario): Promise<Result> {
  const dataDirs: string[] = [];
  const servers: { child: ChildProcess; port: number }[] = [];
  try {
    // On PostgreSQL each scenario gets a fresh database; the first instance fills it, the
    // second (each has a data directory of its own, for its pid lock) only serves.
    let database: Record<string, string> = {};
    if (scenario.postgres) {
      postgres ??= await startTestPostgres();
      database = { OAUTH_DATABASE_URL: await postgres.createDatabase() };
    }
    for (let n = 0; n < (scenario.postgres?.instances ?? 1); n++) {
      const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-bench-'));
      dataDirs.push(dataDir);
      servers.push(await startServer(scenario, dataDir, { ...database, ...(n > 0 ? { BENCH_PREPARE: '0' } : {}) }));
    }
    const ports = servers.map((s) => s.port);
    const next = { i: 0 };
    await drive(scenario, ports, WARMUP, next);
    const r = await drive(scenario, ports, DURATION, next);
    const supply = Number(scenario.env.BENCH_CODES ?? scenario.env.BENCH_REFRESH_TOKENS ?? Infinity);
    if (next.i > supply) process.stderr.write(`bench: ${scenario.name} ran out of prepared values\n`);
    return { name: scenario.name, rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, non2xx: r.non2xx, badBodies: r.badBodies };
  } finally {
    // The data directories go whether the servers were killed or wrote their profiles.
    for (const { child } of servers) await stopBenchServer(child);
    for (const dir of dataDirs) await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Starts the real daemon on a store of 100,000 live tokens: time to /healthz 200, and RSS then. */
async function startup(): Promise<{ ms: number; rssMb: number }> {
  const dataDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-bench-'));
  const prep = await startServer({ ...scenarios()[0], mode: 'latchkey', env: { BENCH_LIVE_TOKENS: '100000' } } as Scenario, dataDir);
  await new Promise<void>((resolve) => {
    prep.child.once('exit', () => resolve());
    prep.child.kill('SIGTERM');
  });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const started = performance.now();
  const daemon = spawn(process.execPath, ['--max-semi-space-size=32', DAEMON], {
    env: { PATH: process.env.PATH ?? '', ...latchkeyEnv(dataDir), PORT: String(port), HOST: '127.0.0.1' },
    stdio: 'ignore',
  });
  try {
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
      if (ok) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const ms = performance.now() - started;
    const status = await fsp.readFile(`/proc/${daemon.pid ?? 0}/status`, 'utf8').catch(() => '');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 'NaN');
    return { ms, rssMb: rssKb / 1024 };
  } finally {
    daemon.kill('SIGKILL');
    await fsp.rm(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const results: (Result & { ceiling: number })[] = [];
  // BENCH_ONLY=W2 runs only the scenarios whose name starts with it.
  const only = process.env.BENCH_ONLY;
  const backend = process.env.BENCH_BACKEND;
  const [ceilingScenario, ...all] = scenarios();
  const rest = all.filter((sc) => backend === undefined || (backend === 'postgres') === (sc.postgres !== undefined));
  if (!ceilingScenario) throw new Error('no W0 scenario');
  // Other work on the machine shows in every ratio: the load average is printed with the results.
  const loadBefore = os.loadavg();
  // A 2-core machine drifts by ±10% over minutes, so each scenario is measured right after
  // its own W0 run and compared with that one: the ratio is not skewed by when it ran.
  const ceilings: number[] = [];
  for (const scenario of rest.filter((sc) => !only || sc.name.startsWith(only))) {
    process.stderr.write(`bench: ${ceilingScenario.name}, then ${scenario.name}...\n`);
    const ceiling = await run(ceilingScenario);
    ceilings.push(ceiling.rps);
    if (ceiling.badBodies > 0 || ceiling.non2xx > 0) results.push({ ...ceiling, ceiling: ceiling.rps });
    results.push({ ...(await run(scenario)), ceiling: ceiling.rps });
  }
  const sorted = [...ceilings].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  const lines = results.length === 0 ? [] : [
    `| scenario | req/s | p50 ms | p99 ms | requests | non-2xx | bad bodies | W0 req/s just before | ratio to W0 |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|`,
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.requests} | ${r.non2xx} | ${r.badBodies} | ${r.ceiling.toFixed(0)} | ${(r.rps / r.ceiling).toFixed(2)} |`,
    ),
    '',
    `W0 (${ceilingScenario.name}): median ${median.toFixed(0)} req/s over ${ceilings.length} runs (${sorted.map((c) => c.toFixed(0)).join(', ')})`,
  ];
  // Compared as ratios to their own W0 runs, so drift between the two runs cancels out.
  const find = (name: string): number => {
    const r = results.find((x) => x.name.startsWith(name));
    return r ? r.rps / r.ceiling : NaN;
  };
  await postgres?.close();
  // How fast this machine is right now: the G rows run long after any W row, and the load of
  // other processes moves every figure.
  const gatewayWanted = (!only || only.startsWith('G')) && backend !== 'postgres';
  const calibration = gatewayWanted ? await run(ceilingScenario) : undefined;
  const gateway = gatewayWanted
    ? await gatewayRows({ connections: CONNECTIONS, durationSeconds: DURATION, warmupSeconds: WARMUP, rounds: GATEWAY_ROUNDS, only, latchkeyEnv })
    : { lines: [], failed: [] };
  const s = (only && !'startup'.startsWith(only)) || backend === 'postgres' ? { ms: NaN, rssMb: NaN } : await startup();
  if (results.some((r) => r.name.startsWith('W2 with 100,000'))) {
    lines.push(`W2 at 100,000 live tokens / at 1,000 (each as its ratio to W0): ${(find('W2 with 100,000') / find('W2 with 1,000')).toFixed(2)}; W3: ${(find('W3 with 100,000') / find('W3 with 1,000')).toFixed(2)}`);
  }
  if (!Number.isNaN(s.ms)) lines.push(`Startup with 100,000 live tokens (spawn to /healthz 200): ${s.ms.toFixed(0)} ms; resident memory then: ${s.rssMb.toFixed(0)} MB`);
  // Issue 13's targets for one instance on PostgreSQL, each as its ratio to its own W0.
  const targets: [string, number][] = [
    ['W1', 0.4],
    ['W2', 0.3],
    ['W3', 0.3],
    ['W4', 0.5],
  ];
  const onPostgres = (w: string, instances: string): number => {
    const r = results.find((x) => x.name.startsWith(`${w} `) && x.name.endsWith(`PostgreSQL, ${instances}`));
    return r ? r.rps / r.ceiling : NaN;
  };
  if (results.some((r) => r.name.includes('PostgreSQL'))) {
    lines.push(
      `PostgreSQL, 1 instance, against the targets: ${targets.map(([w, t]) => `${w} ${onPostgres(w, '1 instance').toFixed(2)} (≥ ${t.toFixed(2)})`).join('; ')}`,
      `PostgreSQL, 2 instances: ${targets.map(([w]) => `${w} ${onPostgres(w, '2 instances').toFixed(2)}`).join('; ')}`,
    );
  }
  const loadAfter = os.loadavg();
  lines.push(
    ...(gateway.lines.length > 0 ? ['', ...gateway.lines, `W0 right before the G rows: ${calibration?.rps.toFixed(0) ?? 'not run'} req/s`, ''] : []),
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.platform()} ${os.release()}; ${CONNECTIONS} connections, ${WARMUP} s warm-up, ${DURATION} s measured`,
    `Load average (1, 5, 15 min) at the start: ${loadBefore.map((l) => l.toFixed(2)).join(', ')}; at the end: ${loadAfter.map((l) => l.toFixed(2)).join(', ')}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  const failed = [...results.filter((r) => r.badBodies > 0 || r.non2xx > 0).map((r) => r.name), ...gateway.failed];
  if (failed.length > 0) {
    process.stderr.write(`bench: unexpected responses in ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

void main();

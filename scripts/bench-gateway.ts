/**
 * The gateway rows of `npm run bench` (issue 11). Each runs MCP `tools/call` requests of a
 * trivial tool, one MCP session per connection (opened before the clock starts), every
 * answer checked:
 *
 * - G1: an MCP server on the SDK's Streamable HTTP transport (bench-server.ts, BENCH_MODE=mcp)
 *   called directly, then the same server process through Latchkey's gateway, in one run:
 *   both throughputs, their ratio and the latency the gateway adds at the median. Once with
 *   JSON answers, once with event-stream answers (the SDK's default).
 * - G2: @modelcontextprotocol/server-everything over stdio through the gateway, one process
 *   per session: throughput and tail latency.
 *
 * Latencies are taken from every response's own timing (autocannon's histogram keeps whole
 * milliseconds, too coarse for a sub-millisecond difference). The CPU time the process in the
 * middle (Latchkey, or the reference proxy) spends per call is read from /proc: unlike req/s,
 * it hardly moves with what else the machine runs.
 *
 * The reference row puts a bare node:http proxy (bench-server.ts, BENCH_MODE=proxy: no token
 * check, no policy, no error handling) in the same place, in the same rounds: what any proxy
 * hop costs on this machine at that moment.
 */
import type { ChildProcess } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { spawnBenchServer, stopBenchServer } from './bench-process.js';

export interface GatewayBenchOptions {
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  /** Measured runs per target; a G1 round measures the server directly, then through the gateway. */
  rounds: number;
  /** BENCH_ONLY: run only the rows whose name starts with it. */
  only: string | undefined;
  /** The environment of a Latchkey bench server on `dataDir`. */
  latchkeyEnv: (dataDir: string) => Record<string, string>;
}

interface Measured {
  /** CPU time of the process in the middle per call, in ms (NaN for a direct call). */
  cpuMsPerCall: number;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  badBodies: number;
  errors: number;
}

/** One row: the measured runs, paired by round (direct, then through the gateway). */
export interface GatewayRow {
  name: string;
  direct: Measured[] | undefined;
  gateway: Measured[];
}

interface Target {
  url: string;
  headers: Record<string, string>;
  /** The process between the load generator and the MCP server, whose CPU time is read. */
  middle?: ChildProcess;
}

/** utime + stime of a process, in ms (Linux /proc; NaN elsewhere). */
function cpuMs(child: ChildProcess | undefined): number {
  if (child?.pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

const PROTOCOL_VERSION = '2025-06-18';
/** Sessions opened at once before a run: each may start a process, on two cores. */
const OPEN_CONCURRENCY = 8;

const json = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

async function openSession(target: Target): Promise<string> {
  const initialize = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench', version: '1' } } };
  const res = await fetch(target.url, { method: 'POST', headers: { ...json, ...target.headers }, body: JSON.stringify(initialize) });
  const text = await res.text();
  const id = res.headers.get('mcp-session-id');
  if (res.status !== 200 || id === null || !text.includes('"serverInfo"')) throw new Error(`initialize at ${target.url} answered ${res.status}: ${text.slice(0, 200)}`);
  const initialized = await fetch(target.url, {
    method: 'POST',
    headers: { ...json, ...target.headers, 'mcp-session-id': id, 'mcp-protocol-version': PROTOCOL_VERSION },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await initialized.arrayBuffer();
  if (initialized.status !== 202) throw new Error(`notifications/initialized at ${target.url} answered ${initialized.status}`);
  return id;
}

/** One MCP session per connection, as an MCP client holds one. */
async function openSessions(target: Target, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += OPEN_CONCURRENCY) {
    ids.push(...(await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, count - i) }, () => openSession(target)))));
  }
  return ids;
}

const percentile = (sorted: Float64Array, p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

/** `tools/call` of `tool` on every session for `seconds`; each answer must contain `expect`. */
async function drive(target: Target, sessions: string[], seconds: number, options: GatewayBenchOptions, tool: { name: string; expect: string }): Promise<Measured> {
  const url = new URL(target.url);
  const times: number[] = [];
  let badBodies = 0;
  let next = 0;
  const cpuBefore = cpuMs(target.middle);
  const result = await autocannon({
    url: url.origin,
    connections: options.connections,
    duration: seconds,
    setupClient: (client) => {
      const session = sessions[next++ % sessions.length] ?? '';
      let id = 1;
      client.setRequests([
        {
          method: 'POST',
          path: url.pathname,
          headers: { ...json, ...target.headers, 'mcp-session-id': session, 'mcp-protocol-version': PROTOCOL_VERSION },
          setupRequest: (req) => ({
            ...req,
            body: JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'tools/call', params: { name: tool.name, arguments: { message: 'bench' } } }),
          }),
          onResponse: (status, body) => {
            if (status !== 200 || !body.includes(tool.expect)) badBodies++;
          },
        },
      ]);
      client.on('response', (status: number, _bytes: number, ms: number) => {
        if (status >= 200 && status < 300) times.push(ms);
      });
    },
  });
  const cpuAfter = cpuMs(target.middle);
  const sorted = Float64Array.from(times).sort();
  return {
    cpuMsPerCall: (cpuAfter - cpuBefore) / result.requests.total,
    rps: result.requests.average,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    requests: result.requests.total,
    non2xx: result.non2xx,
    badBodies,
    errors: result.errors + result.timeouts,
  };
}

type Tool = { name: string; expect: string };

/**
 * Warms each target up, then measures them in `rounds` rounds, each target right after the
 * other: on a shared 2-core machine throughput drifts by tens of percent within a minute, and
 * only runs taken side by side can be compared.
 */
async function measureRounds(targets: { target: Target; sessions: string[] }[], options: GatewayBenchOptions, tool: Tool): Promise<Measured[][]> {
  for (const { target, sessions } of targets) await drive(target, sessions, options.warmupSeconds, options, tool);
  const runs: Measured[][] = targets.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    for (const [i, { target, sessions }] of targets.entries()) runs[i]?.push(await drive(target, sessions, options.durationSeconds, options, tool));
  }
  return runs;
}

async function withServers<T>(start: (dir: string, track: (child: ChildProcess) => void) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-bench-gateway-'));
  const children: ChildProcess[] = [];
  try {
    return await start(dir, (child) => children.push(child));
  } finally {
    // Latchkey first, with SIGTERM: it ends its stdio servers' process groups.
    for (const child of children.reverse()) await stopBenchServer(child, 'SIGTERM');
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function startLatchkey(dir: string, options: GatewayBenchOptions, servers: object, track: (child: ChildProcess) => void): Promise<{ port: number; child: ChildProcess }> {
  const file = path.join(dir, 'gateway.json');
  await fsp.writeFile(file, JSON.stringify({ mcpServers: servers }));
  const latchkey = await spawnBenchServer({
    BENCH_MODE: 'latchkey',
    ...options.latchkeyEnv(path.join(dir, 'data')),
    OAUTH_GATEWAY_CONFIG: file,
    // One process per connection, and room for the sessions of the warm-up.
    OAUTH_GATEWAY_MAX_PROCESSES: String(options.connections * 2),
  });
  track(latchkey.child);
  return latchkey;
}

async function g1(name: string, jsonAnswers: boolean, options: GatewayBenchOptions, withReference: boolean): Promise<GatewayRow[]> {
  return withServers(async (dir, track) => {
    const upstream = await spawnBenchServer({ BENCH_MODE: 'mcp', BENCH_MCP_JSON: jsonAnswers ? '1' : '0' });
    track(upstream.child);
    const latchkey = await startLatchkey(dir, options, { upstream: { url: `http://127.0.0.1:${upstream.port}/mcp` } }, track);
    const tool = { name: 'echo', expect: '"text":"bench"' };
    const direct: Target = { url: `http://127.0.0.1:${upstream.port}/mcp`, headers: {} };
    const targets = [
      direct,
      { url: `http://127.0.0.1:${latchkey.port}/upstream/mcp`, headers: { authorization: 'Bearer gateway-upstream' }, middle: latchkey.child },
    ];
    if (withReference) {
      const proxy = await spawnBenchServer({ BENCH_MODE: 'proxy', BENCH_UPSTREAM_PORT: String(upstream.port) });
      track(proxy.child);
      targets.push({ url: `http://127.0.0.1:${proxy.port}/mcp`, headers: {}, middle: proxy.child });
    }
    const withSessions = [];
    for (const target of targets) withSessions.push({ target, sessions: await openSessions(target, options.connections) });
    const [directRuns = [], gatewayRuns = [], proxyRuns = []] = await measureRounds(withSessions, options, tool);
    const suffix = `${options.connections} connection${options.connections === 1 ? '' : 's'}`;
    return [
      { name: `${name}, ${suffix}`, direct: directRuns, gateway: gatewayRuns },
      ...(withReference ? [{ name: `reference: a bare node:http proxy instead of Latchkey, ${name.replace(/^G1 /, '')}, ${suffix}`, direct: directRuns, gateway: proxyRuns }] : []),
    ];
  });
}

async function g2(name: string, options: GatewayBenchOptions): Promise<GatewayRow[]> {
  const everything = path.join(path.dirname(createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/package.json')), 'dist', 'index.js');
  return withServers(async (dir, track) => {
    const latchkey = await startLatchkey(dir, options, { everything: { command: process.execPath, args: [everything, 'stdio'] } }, track);
    const viaGateway: Target = { url: `http://127.0.0.1:${latchkey.port}/everything/mcp`, headers: { authorization: 'Bearer gateway-everything' }, middle: latchkey.child };
    const sessions = await openSessions(viaGateway, options.connections);
    const [runs = []] = await measureRounds([{ target: viaGateway, sessions }], options, { name: 'echo', expect: '"text":"Echo: bench"' });
    return [{ name: `${name}, ${options.connections} connections`, direct: undefined, gateway: runs }];
  });
}

/** Runs the G rows BENCH_ONLY lets through; the table lines and the names of rows with unexpected answers. */
export async function gatewayRows(options: GatewayBenchOptions): Promise<{ lines: string[]; failed: string[] }> {
  // At 50 connections the load is closed-loop: latency is connections / throughput, so the
  // added latency there mostly restates the throughput ratio. At 1 connection it is the time
  // one call spends in the gateway.
  const single = { ...options, connections: 1 };
  const rows: { name: string; run: () => Promise<GatewayRow[]> }[] = [
    { name: 'G1 tools/call, HTTP upstream, JSON answers', run: () => g1('G1 tools/call, HTTP upstream, JSON answers', true, options, true) },
    { name: 'G1 tools/call, HTTP upstream, event-stream answers', run: () => g1('G1 tools/call, HTTP upstream, event-stream answers', false, options, false) },
    { name: 'G1 tools/call, HTTP upstream, JSON answers (1 connection)', run: () => g1('G1 tools/call, HTTP upstream, JSON answers', true, single, false) },
    { name: 'G2 tools/call, stdio server-everything, one process per session', run: () => g2('G2 tools/call, stdio server-everything, one process per session', options) },
  ];
  const results: GatewayRow[] = [];
  for (const row of rows.filter((r) => !options.only || r.name.startsWith(options.only))) {
    process.stderr.write(`bench: ${row.name}...\n`);
    results.push(...(await row.run()));
  }
  if (results.length === 0) return { lines: [], failed: [] };
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length === 0 ? NaN : sorted.length % 2 === 1 ? (sorted[(sorted.length - 1) / 2] ?? NaN) : ((sorted[sorted.length / 2 - 1] ?? 0) + (sorted[sorted.length / 2] ?? 0)) / 2;
  };
  const of = (runs: Measured[], pick: (m: Measured) => number): number => median(runs.map(pick));
  const paired = (direct: Measured[], gateway: Measured[], f: (d: Measured, g: Measured) => number): number[] =>
    gateway.flatMap((g, i) => (direct[i] ? [f(direct[i], g)] : []));
  const sum = (runs: Measured[], pick: (m: Measured) => number): number => runs.reduce((total, m) => total + pick(m), 0);
  const lines = [
    `| scenario | direct req/s | via gateway req/s | ratio | direct p50 ms | gateway p50 ms | added p50 ms | direct p99 ms | gateway p99 ms | gateway CPU ms/call | gateway requests | non-2xx | bad bodies | errors |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
    ...results.map(({ name, direct, gateway }) => {
      const both = [...gateway, ...(direct ?? [])];
      const cells = [
        name,
        direct ? of(direct, (m) => m.rps).toFixed(0) : '–',
        of(gateway, (m) => m.rps).toFixed(0),
        // Each round's ratio and difference, then their median: runs side by side share the machine's state.
        direct ? median(paired(direct, gateway, (d, g) => g.rps / d.rps)).toFixed(2) : '–',
        direct ? of(direct, (m) => m.p50).toFixed(2) : '–',
        of(gateway, (m) => m.p50).toFixed(2),
        direct ? median(paired(direct, gateway, (d, g) => g.p50 - d.p50)).toFixed(2) : '–',
        direct ? of(direct, (m) => m.p99).toFixed(2) : '–',
        of(gateway, (m) => m.p99).toFixed(2),
        of(gateway, (m) => m.cpuMsPerCall).toFixed(3),
        String(sum(gateway, (m) => m.requests)),
        String(sum(both, (m) => m.non2xx)),
        String(sum(both, (m) => m.badBodies)),
        String(sum(both, (m) => m.errors)),
      ];
      return `| ${cells.join(' | ')} |`;
    }),
    '',
    `Each G row: the median of ${options.rounds} rounds of ${options.durationSeconds} s; in a G1 round the server is called directly, then through the gateway, and the ratio and the added p50 are taken per round.`,
  ];
  const failed = results.filter(({ direct, gateway }) => [...gateway, ...(direct ?? [])].some((m) => m.non2xx > 0 || m.badBodies > 0 || m.errors > 0)).map((r) => r.name);
  return { lines, failed };
}

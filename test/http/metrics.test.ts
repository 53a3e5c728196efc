import { http, obtainTokens, openConsent, postConsent, refresh, register, startHarness, type Harness } from '../helpers/http-harness.js';

/**
 * GET /metrics (prom-client): off without OAUTH_METRICS_TOKEN, only for a bearer of it, in
 * the Prometheus text format, and its counters follow real requests through the app. Labels
 * name kinds of things, never a client or a token.
 */

const TOKEN = 'metrics-token-for-tests-0123456789';

/** One sample of the text format: `name{a="1",b="2"} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (0.0.4); throws on a line that is not in it. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type?.[1] && type[2]) {
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP \w+ .+$/.test(line)) continue;
    // Values as Go's ParseFloat reads them (Prometheus): prom-client writes NaN as "Nan".
    const sample = /^(\w+)(?:\{(.*)\})? (-?[\d.e+-]+|nan|[+-]inf)$/i.exec(line);
    if (!sample?.[1] || sample[3] === undefined) throw new Error(`not a line of the Prometheus text format: ${line}`);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] ?? ''] = m[2] ?? '';
    samples.push({ name: sample[1], labels, value: Number(sample[3]) });
  }
  return { samples, types };
}

/** The value of a sample with exactly these labels among its own (0 when absent). */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(h: Harness): Promise<Sample[]> {
  const res = await http(h).get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
  expect(res.status).toBe(200);
  return parse(res.text).samples;
}

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

it('is off without OAUTH_METRICS_TOKEN: 404, like any unknown path', async () => {
  h = await startHarness();
  const res = await http(h).get('/metrics').set('Authorization', `Bearer ${TOKEN}`);
  expect(res.status).toBe(404);
  expect(h.services.metrics).toBeUndefined();
});

it('answers 401 without the token or with a wrong one, and never shows a figure then', async () => {
  h = await startHarness({ OAUTH_METRICS_TOKEN: TOKEN });
  for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, TOKEN]) {
    let req = http(h).get('/metrics');
    if (authorization !== undefined) req = req.set('Authorization', authorization);
    const res = await req;
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="latchkey-metrics"');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.text).not.toMatch(/latchkey_|process_/);
  }
});

it('answers the Prometheus text format, with the process metrics prom-client collects', async () => {
  h = await startHarness({ OAUTH_METRICS_TOKEN: TOKEN });
  const res = await http(h).get('/metrics').set('Authorization', `bearer ${TOKEN}`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  const { samples, types } = parse(res.text);
  expect(types.get('latchkey_http_request_duration_seconds')).toBe('histogram');
  expect(types.get('latchkey_tokens_issued_total')).toBe('counter');
  expect(types.get('latchkey_grants_revoked_total')).toBe('counter');
  expect(types.get('latchkey_pin_failures_total')).toBe('counter');
  expect(types.get('latchkey_pin_lockouts_total')).toBe('counter');
  expect(types.get('latchkey_store_operation_duration_seconds')).toBe('histogram');
  expect(types.get('latchkey_store_operation_errors_total')).toBe('counter');
  expect(types.get('process_cpu_user_seconds_total')).toBe('counter');
  expect(types.get('nodejs_heap_size_used_bytes')).toBe('gauge');
  expect(value(samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  // The pool's gauges exist only on PostgreSQL (test/scaling/two-instances.test.ts reads them).
  expect(types.has('latchkey_database_pool_connections')).toBe(false);
});

it('counts requests, tokens issued and refreshed, revocations, PIN failures and lockouts, and store operations as they happen', async () => {
  h = await startHarness({ OAUTH_METRICS_TOKEN: TOKEN, OAUTH_PIN_MAX_FAILURES_PER_HOUR: '3' });
  const before = await scrape(h);
  expect(value(before, 'latchkey_tokens_issued_total')).toBe(0);

  const client = await register(h);
  const first = await obtainTokens(h, client);
  const second = (await refresh(h, client, first.refresh_token ?? '')).body as { refresh_token: string };
  // The first refresh token, reused long after its rotation: theft, the grant is revoked.
  h.clock.advance(3_600_000);
  expect((await refresh(h, client, first.refresh_token ?? '')).status).toBe(400);
  const other = await obtainTokens(h, client);
  expect((await http(h).post('/revoke').type('form').send({ token: other.refresh_token, client_id: client.client_id })).status).toBe(200);
  expect(second.refresh_token).toBeDefined();

  // Three wrong PINs spend the hourly budget of 3: three failures, one lockout.
  for (let i = 0; i < 3; i++) {
    const page = await openConsent(h, client);
    await postConsent(h, { consent: page.consent, csrf: page.csrf, pin: '00000000', decision: 'approve' });
  }

  const after = await scrape(h);
  expect(value(after, 'latchkey_tokens_issued_total', { grant_type: 'authorization_code' })).toBe(2);
  expect(value(after, 'latchkey_tokens_issued_total', { grant_type: 'refresh_token' })).toBe(1);
  expect(value(after, 'latchkey_grants_revoked_total', { reason: 'refresh_reuse' })).toBe(1);
  expect(value(after, 'latchkey_grants_revoked_total', { reason: 'client_request' })).toBe(1);
  expect(value(after, 'latchkey_pin_failures_total', { purpose: 'consent' })).toBe(3);
  expect(value(after, 'latchkey_pin_lockouts_total', { purpose: 'consent' })).toBe(1);

  // Requests by endpoint and status: two code exchanges and a refresh answered 200 at /token,
  // one reuse answered 400; one registration answered 201.
  const count = (endpoint: string, status: string): number => value(after, 'latchkey_http_request_duration_seconds_count', { endpoint, status });
  expect(count('token', '200')).toBe(3);
  expect(count('token', '400')).toBe(1);
  expect(count('registration', '201')).toBe(1);
  expect(count('revocation', '200')).toBe(1);
  expect(count('authorization', '200')).toBe(5);
  expect(count('consent', '303')).toBe(2);
  expect(value(after, 'latchkey_http_request_duration_seconds_bucket', { endpoint: 'token', status: '200', le: '+Inf' })).toBe(3);
  expect(value(after, 'latchkey_http_request_duration_seconds_sum', { endpoint: 'token', status: '200' })).toBeGreaterThan(0);

  // Store operations, timed until durable, by backend and operation.
  const ops = (operation: string): number => value(after, 'latchkey_store_operation_duration_seconds_count', { backend: 'files', operation });
  expect(ops('store.consumeCode')).toBe(2);
  expect(ops('store.rotateRefreshToken')).toBe(2);
  expect(ops('store.putClient')).toBe(1);
  expect(ops('kv.put')).toBeGreaterThanOrEqual(3);
  expect(value(after, 'latchkey_store_operation_errors_total')).toBe(0);
});

it('never labels by client, token or path: more distinct values add no series', async () => {
  h = await startHarness({ OAUTH_METRICS_TOKEN: TOKEN });
  const ours = async (): Promise<string[]> => (await scrape(h as Harness)).filter((s) => s.name.startsWith('latchkey_')).map((s) => `${s.name}${JSON.stringify(s.labels)}`);
  const flood = async (from: number): Promise<{ clientId: string; access: string }> => {
    const client = await register(h as Harness);
    const tokens = await obtainTokens(h as Harness, client);
    for (let i = from; i < from + 10; i++) {
      await http(h as Harness).get(`/no-such-path-${i}`);
      await http(h as Harness).get(`/admin/nothing-${i}`);
      await http(h as Harness).post('/token').type('form').send({ grant_type: 'refresh_token', refresh_token: `bogus-${i}`, client_id: client.client_id });
    }
    return { clientId: client.client_id, access: tokens.access_token };
  };
  const first = await flood(0);
  await ours(); // the scrape's own request is counted from the next scrape on
  const series = await ours();
  const second = await flood(10);
  // Another client, other tokens, other paths: the very same series, only their values moved.
  expect(await ours()).toEqual(series);
  const text = (await http(h).get('/metrics').set('Authorization', `Bearer ${TOKEN}`)).text;
  for (const secret of [first.clientId, first.access, second.clientId, second.access, 'no-such-path', 'nothing-', 'bogus-']) expect(text).not.toContain(secret);
});

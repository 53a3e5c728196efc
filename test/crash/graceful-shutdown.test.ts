import http from 'node:http';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, freePort } from '../e2e/daemon.js';
import { INTROSPECTION_SECRET, Ledger, PIN, REDIRECT_URI, REGISTRATION, authorize, clientKnown, introspect, registerClient } from './load.js';

/**
 * SIGTERM under load (issue 4, section 3) loses no request in flight. Each request is sent
 * with `Expect: 100-continue` and its body held back: the daemon's "100 Continue" proves it
 * has the request, so it is in flight for certain when the signal arrives. The bodies follow
 * once the daemon has logged that it is shutting down; every request must still be answered
 * with success, the daemon must exit 0, and everything it acknowledged must be there after.
 */

const REGISTRATIONS = 25;
const EXCHANGES = 25;

interface Held {
  /** Sends the body; resolves with the answer. */
  finish(): Promise<{ status: number; body: string }>;
}

/** Opens a request on its own connection and resolves once the daemon said 100 Continue. */
function holdRequest(port: number, pathname: string, contentType: string, body: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: pathname,
      agent: false,
      headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body), expect: '100-continue' },
    });
    const answer = new Promise<{ status: number; body: string }>((done, fail) => {
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', fail);
      });
      req.on('error', fail);
    });
    req.on('error', reject);
    req.on('continue', () =>
      resolve({
        finish: () => {
          req.end(body);
          return answer;
        },
      }),
    );
    req.flushHeaders();
  });
}

let root: string;
let daemon: Daemon;

beforeAll(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-sigterm-'));
  daemon = new Daemon({
    port: await freePort(),
    dataDir: path.join(root, 'data'),
    cwd: root,
    env: {
      OAUTH_PIN: PIN,
      OAUTH_INTROSPECTION_SECRET: INTROSPECTION_SECRET,
      OAUTH_REGISTRATION_RATE_LIMIT: '1000000',
      OAUTH_TOKEN_RATE_LIMIT: '1000000',
      OAUTH_AUTHORIZE_RATE_LIMIT: '1000000',
      // The "shutting down" line is logged at info.
      LOG_LEVEL: 'info',
    },
  });
});

afterAll(async () => {
  await daemon.kill();
  await fsp.rm(root, { recursive: true, force: true });
});

it(`SIGTERM with ${REGISTRATIONS + EXCHANGES} requests in flight answers every one, exits 0 and keeps them all`, async () => {
  await daemon.start();
  const base = daemon.baseUrl;
  const port = Number(new URL(base).port);
  const ledger = new Ledger();
  const clientId = (await registerClient(base, ledger)) ?? '';
  const approvals = await Promise.all(Array.from({ length: EXCHANGES }, () => authorize(base, clientId)));

  const held = await Promise.all([
    ...Array.from({ length: REGISTRATIONS }, () => holdRequest(port, '/register', 'application/json', JSON.stringify(REGISTRATION))),
    ...approvals.map((a) =>
      holdRequest(
        port,
        '/token',
        'application/x-www-form-urlencoded',
        new URLSearchParams({ grant_type: 'authorization_code', code: a.code, code_verifier: a.verifier, redirect_uri: REDIRECT_URI, client_id: clientId }).toString(),
      ),
    ),
  ]);

  const exited = daemon.stop('SIGTERM');
  while (!daemon.log().includes('shutting down')) await new Promise((r) => setTimeout(r, 10));
  const answers = await Promise.all(held.map((h) => h.finish()));
  const exit = await exited;

  expect(answers.map((a) => a.status)).toEqual([...Array<number>(REGISTRATIONS).fill(201), ...Array<number>(EXCHANGES).fill(200)]);
  expect(exit).toEqual({ code: 0, signal: null });

  await daemon.start();
  for (const a of answers.slice(0, REGISTRATIONS)) {
    expect(await clientKnown(base, (JSON.parse(a.body) as { client_id: string }).client_id)).toBe(true);
  }
  for (const a of answers.slice(REGISTRATIONS)) {
    expect(await introspect(base, (JSON.parse(a.body) as { access_token: string }).access_token)).toBe(true);
  }
  await daemon.stop('SIGTERM');
}, 60_000);

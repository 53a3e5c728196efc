import { promises as fsp } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { formatDuration } from '../clock.js';

/** The daemon could not be reached over its control socket; the message says what to check. */
export class ControlUnavailableError extends Error {
  override name = 'ControlUnavailableError';
}

const TIMEOUT_MS = 10_000;

/**
 * One call to the running daemon's control API over its Unix socket (src/http/control-routes.ts).
 * Resolves to the JSON answer; a 4xx/5xx answer rejects with its `error` text.
 */
export async function callControl(socketPath: string, method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<unknown> {
  await checkSocketOwner(socketPath);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path: urlPath,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            reject(new Error(`the daemon answered ${res.statusCode ?? '?'} without JSON`));
            return;
          }
          if ((res.statusCode ?? 500) >= 400) reject(new Error(String((parsed as { error?: unknown }).error ?? `HTTP ${res.statusCode ?? '?'}`)));
          else resolve(parsed);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${formatDuration(TIMEOUT_MS)}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new ControlUnavailableError(`no running Latchkey answers on ${socketPath} (${err.code}). Is it running, with this OAUTH_DATA_DIR (or OAUTH_CONTROL_SOCKET)?`));
      } else if (err.code === 'EACCES') {
        reject(new ControlUnavailableError(`permission denied on ${socketPath}: run this as the user Latchkey runs as (e.g. sudo -u latchkey latchkey …)`));
      } else reject(err);
    });
    req.end(payload);
  });
}

/**
 * Talks only to a socket the daemon could have made: one owned by this user, by root, or (when
 * this is root) by the owner of its directory. Anything else may be another user's squatting
 * socket, which would answer "revoked" to a revocation that never happened.
 */
async function checkSocketOwner(socketPath: string): Promise<void> {
  let socket;
  let dir;
  try {
    [socket, dir] = await Promise.all([fsp.lstat(socketPath), fsp.stat(path.dirname(path.resolve(socketPath)))]);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EACCES') throw new ControlUnavailableError(`permission denied on ${socketPath}: run this as the user Latchkey runs as (e.g. sudo -u latchkey latchkey …)`);
    throw new ControlUnavailableError(`no running Latchkey answers on ${socketPath} (${code}). Is it running, with this OAUTH_DATA_DIR (or OAUTH_CONTROL_SOCKET)?`);
  }
  if (!socket.isSocket()) throw new ControlUnavailableError(`${socketPath} is not a socket: check OAUTH_CONTROL_SOCKET`);
  const me = process.getuid?.();
  if (me === undefined || socket.uid === me || socket.uid === 0 || (me === 0 && socket.uid === dir.uid)) return;
  throw new ControlUnavailableError(`${socketPath} belongs to uid ${socket.uid}, neither you nor root: another user may have put it there, so nothing was sent to it`);
}

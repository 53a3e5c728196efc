import type { Request } from 'express';
import { PARSE_ERROR, GATEWAY_ERROR } from './json-rpc.js';

/** The MCP SDK's own limit for a POST body. */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

export type BodyOutcome =
  | { ok: true; body: unknown; raw: Buffer }
  | { ok: false; status: number; code: number; message: string };

/**
 * Reads a POST body as JSON. Streamable HTTP requires `Content-Type: application/json` (MCP
 * transports §"Sending Messages to the Server"); the gateway parses it once, to find
 * `initialize` and tool calls, and keeps the bytes for an HTTP upstream.
 */
export async function readJsonBody(req: Request): Promise<BodyOutcome> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    return { ok: false, status: 415, code: GATEWAY_ERROR, message: 'Unsupported Media Type: Content-Type must be application/json' };
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) return tooLarge();
  const raw = await readAll(req);
  if (raw === undefined) return tooLarge();
  try {
    return { ok: true, body: JSON.parse(raw.toString('utf8')) as unknown, raw };
  } catch {
    return { ok: false, status: 400, code: PARSE_ERROR, message: 'Parse error: the body is not valid JSON' };
  }
}

/**
 * The body's bytes, or undefined past the limit. Plain 'data' and 'end' events: an async
 * iterator over the request costs a share of a proxied call that the gateway bench can see.
 */
function readAll(req: Request): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
        return;
      }
      req.off('data', onData);
      // Drain what is left so the connection can answer the 413.
      req.resume();
      resolve(undefined);
    };
    let ended = false;
    req.on('data', onData);
    req.once('end', () => {
      ended = true;
      resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks));
    });
    req.once('error', reject);
    req.once('close', () => {
      if (!ended) reject(new Error('the client closed the connection before the body was complete'));
    });
  });
}

function tooLarge(): BodyOutcome {
  return { ok: false, status: 413, code: GATEWAY_ERROR, message: `The body is larger than ${MAX_BODY_BYTES} bytes` };
}

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
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return tooLarge();
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks);
  try {
    return { ok: true, body: JSON.parse(raw.toString('utf8')) as unknown, raw };
  } catch {
    return { ok: false, status: 400, code: PARSE_ERROR, message: 'Parse error: the body is not valid JSON' };
  }
}

function tooLarge(): BodyOutcome {
  return { ok: false, status: 413, code: GATEWAY_ERROR, message: `The body is larger than ${MAX_BODY_BYTES} bytes` };
}

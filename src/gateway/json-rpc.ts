import type { Response } from 'express';
import { noStore } from '../net/cache-headers.js';

/**
 * The few JSON-RPC 2.0 shapes the gateway looks at. Messages are otherwise passed on as
 * they came: the gateway is a transport, the MCP server behind it speaks for itself.
 */

export type JsonRpcId = string | number;

export interface JsonRpcError {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: { code: number; message: string };
}

/** JSON-RPC 2.0 §5.1: invalid params. MCP answers an unknown tool with it, so a hidden tool looks unknown. */
export const INVALID_PARAMS = -32602;
export const PARSE_ERROR = -32700;
/** The implementation-defined server error range (-32000 to -32099): failures of the gateway itself. */
export const GATEWAY_ERROR = -32000;
/** What the MCP SDK answers for an unknown Mcp-Session-Id, so clients start a new session. */
export const SESSION_NOT_FOUND = -32001;

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

export const isId = (value: unknown): value is JsonRpcId => typeof value === 'string' || typeof value === 'number';

/** A request has a method and an id; a notification has a method and no id. */
export function isRequest(value: unknown): value is JsonObject & { id: JsonRpcId; method: string } {
  return isObject(value) && typeof value.method === 'string' && isId(value.id);
}

export function isResponse(value: unknown): value is JsonObject & { id: JsonRpcId } {
  return isObject(value) && value.method === undefined && isId(value.id) && ('result' in value || 'error' in value);
}

/** The messages of a POST body: one message, or a batch (protocol 2025-03-26). */
export function messagesOf(body: unknown): unknown[] {
  return Array.isArray(body) ? body : [body];
}

export function requestIds(body: unknown): JsonRpcId[] {
  return messagesOf(body).filter(isRequest).map((m) => m.id);
}

export function isInitializeRequest(body: unknown): boolean {
  return isRequest(body) && body.method === 'initialize';
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string): JsonRpcError {
  return { jsonrpc: '2.0', id, error: { code, message } };
}

/**
 * An HTTP error answered in JSON-RPC, so MCP clients show `message` to the user. With the ids
 * of the requests it answers, each pending call fails at once; with none, `id` is null.
 */
export function sendJsonRpcError(
  res: Response,
  status: number,
  code: number,
  message: string,
  ids: readonly JsonRpcId[] = [],
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) return;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  noStore(res);
  const body = ids.length === 0 ? errorResponse(null, code, message) : ids.length === 1 ? errorResponse(ids[0] ?? null, code, message) : ids.map((id) => errorResponse(id, code, message));
  res.status(status).json(body);
}

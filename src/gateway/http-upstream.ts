import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { HttpServerConfig } from './config-file.js';
import { identityHeaders } from './identity-headers.js';
import { errorResponse, GATEWAY_ERROR, isResponse, messagesOf, requestIds, sendJsonRpcError, type JsonRpcId } from './json-rpc.js';
import type { AuthorizedCall, HandlerStatus, LastError, ServerHandler } from './server-handler.js';
import { messageEvent, SseEventSplitter, withData } from './sse-events.js';
import type { ToolPolicy } from './tool-policy.js';

export interface HttpUpstreamOptions {
  config: HttpServerConfig;
  policy: ToolPolicy | undefined;
  /** How long to wait for the upstream's response to start. */
  timeoutMs: number;
  logger: Logger;
  clock: { now(): number };
}

/**
 * The client headers an upstream needs for Streamable HTTP, and nothing else: never
 * Authorization (token passthrough is forbidden by the MCP authorization spec), never
 * Cookie (Latchkey's own), never a client's X-Latchkey-* (only the gateway may set those),
 * never Accept-Encoding (a compressed event stream could not be passed on event by event).
 */
const FORWARDED_REQUEST_HEADERS = ['accept', 'content-type', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id', 'user-agent'];

/**
 * Upstream response headers that stay behind: hop-by-hop ones (RFC 9110 §7.6.1), cookies for
 * Latchkey's origin, CORS (the gateway answers CORS itself), and the upstream's own
 * WWW-Authenticate, which would send clients to authorize somewhere else.
 */
const DROPPED_RESPONSE_HEADER = /^(connection|keep-alive|transfer-encoding|upgrade|te|trailer|proxy-.*|set-cookie|www-authenticate|content-length|access-control-.*)$/i;

/** A JSON response is one message: it is read whole, so a cut-off one can become a clean error. */
const MAX_JSON_RESPONSE_BYTES = 64 * 1024 * 1024;

class UpstreamTimeout extends Error {}

/** Streamable HTTP to an MCP server at `url`: requests pass through, event streams pass event by event. */
export function httpUpstream(options: HttpUpstreamOptions): ServerHandler {
  const { config, policy, logger } = options;
  const url = new URL(config.url);
  const transport = url.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true });
  // Worked out once: converting the URL on every request is a visible share of a proxied call.
  const target = { ...urlToHttpOptions(url), agent };
  const open = new Set<http.ClientRequest>();
  let lastError: LastError | undefined;
  const log = logger.child({ gatewayServer: config.name });

  const noteError = (message: string): void => {
    lastError = { at: options.clock.now(), message };
    log.warn(message);
  };

  const handle = (req: Request, res: Response, call: AuthorizedCall): Promise<void> =>
    new Promise<void>((resolve) => {
      const ids = call.body === undefined ? [] : requestIds(call.body);
      const headers: OutgoingHttpHeaders = {};
      for (const name of FORWARDED_REQUEST_HEADERS) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      Object.assign(headers, config.headers, identityHeaders(call.token));
      if (call.raw !== undefined) headers['content-length'] = call.raw.length;

      const upstream = transport.request({ ...target, method: req.method, headers });
      open.add(upstream);
      upstream.once('close', () => open.delete(upstream));
      const timer = setTimeout(() => upstream.destroy(new UpstreamTimeout()), options.timeoutMs);
      // A client that goes away aborts the upstream request, and with it the work behind it.
      res.once('close', () => {
        clearTimeout(timer);
        if (!res.writableFinished) upstream.destroy();
        resolve();
      });
      upstream.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (res.headersSent || res.destroyed) return;
        if (err instanceof UpstreamTimeout) {
          noteError(`no answer within ${options.timeoutMs / 1000} s`);
          sendJsonRpcError(res, 504, GATEWAY_ERROR, `The MCP server "${config.name}" did not answer in time`, ids);
        } else {
          noteError(`unreachable (${err.code ?? err.message})`);
          sendJsonRpcError(res, 502, GATEWAY_ERROR, `The MCP server "${config.name}" is unreachable (${err.code ?? 'connection failed'})`, ids);
        }
      });
      upstream.once('response', (up: IncomingMessage) => {
        clearTimeout(timer);
        up.on('error', () => undefined); // a cut-off response is handled at 'close'
        const status = up.statusCode ?? 502;
        if (status === 401 || status === 403) {
          // The upstream refused the gateway, not the client: a 401 passed on would make the
          // client re-authorize with Latchkey forever.
          up.resume();
          noteError(`answered HTTP ${status} to the gateway`);
          sendJsonRpcError(res, 502, GATEWAY_ERROR, `The MCP server "${config.name}" refused the gateway's request (HTTP ${status}); its owner should check the headers configured for it`, ids);
          return;
        }
        const type = (up.headers['content-type'] ?? '').toLowerCase();
        if (type.startsWith('text/event-stream')) streamEvents(up, res, status, ids);
        else if (type.startsWith('application/json')) relayJson(up, res, status, ids);
        else {
          copyHeaders(up, res);
          if (up.headers['content-length'] !== undefined) res.setHeader('content-length', up.headers['content-length']);
          res.status(status);
          up.pipe(res);
        }
      });
      upstream.end(call.raw);
    });

  /**
   * Passes each event on as soon as it is complete; a stream cut short answers what it owed.
   * What arrives in one turn of the event loop leaves in one write: the headers, the events of
   * a chunk and, for a stream that ends there, its end. A tool call answered at once then
   * costs one system call instead of three; a long one still gets each event at once.
   */
  const streamEvents = (up: IncomingMessage, res: Response, status: number, ids: JsonRpcId[]): void => {
    let corked = false;
    const holdUntilNextTurn = (): void => {
      if (corked) return;
      corked = true;
      res.cork();
      setImmediate(() => {
        corked = false;
        if (!res.writableEnded && !res.destroyed) res.uncork();
      });
    };
    holdUntilNextTurn();
    copyHeaders(up, res);
    res.status(status);
    res.flushHeaders();
    const unanswered = new Set(ids);
    const splitter = new SseEventSplitter((event) => {
      let out = event.raw;
      if (event.data !== undefined && (unanswered.size > 0 || policy)) {
        const message = parseJson(event.data);
        for (const m of messagesOf(message)) if (isResponse(m)) unanswered.delete(m.id);
        const filtered = policy?.filter(message);
        if (filtered !== undefined) out = withData(event, JSON.stringify(filtered));
      }
      if (!res.write(out)) {
        up.pause();
        res.once('drain', () => up.resume());
      }
    });
    up.on('data', (chunk: Buffer) => {
      if (res.destroyed) return;
      holdUntilNextTurn();
      splitter.push(chunk);
    });
    // 'end' for a stream that completed (in the turn its last bytes came), 'close' for one cut short.
    const finish = (): void => {
      if (res.destroyed || res.writableEnded) return;
      if (!up.complete) {
        noteError('closed an event stream before it was complete');
        for (const id of unanswered) {
          res.write(messageEvent(errorResponse(id, GATEWAY_ERROR, `The MCP server "${config.name}" closed the connection before answering`)));
        }
      }
      res.end();
    };
    up.once('end', finish);
    up.once('close', finish);
  };

  const relayJson = (up: IncomingMessage, res: Response, status: number, ids: JsonRpcId[]): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    up.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_JSON_RESPONSE_BYTES) up.destroy();
      else chunks.push(chunk);
    });
    up.once('close', () => {
      if (res.destroyed || res.writableEnded) return;
      if (!up.complete || size > MAX_JSON_RESPONSE_BYTES) {
        noteError(size > MAX_JSON_RESPONSE_BYTES ? 'sent a JSON response over 64 MiB' : 'closed the connection in the middle of a response');
        sendJsonRpcError(res, 502, GATEWAY_ERROR, `The MCP server "${config.name}" closed the connection before answering`, ids);
        return;
      }
      let body = Buffer.concat(chunks);
      const filtered = policy?.filter(parseJson(body.toString('utf8')));
      if (filtered !== undefined) body = Buffer.from(JSON.stringify(filtered), 'utf8');
      copyHeaders(up, res);
      res.setHeader('content-length', body.length);
      res.status(status).end(body);
    });
  };

  return {
    config,
    handle,
    status(): HandlerStatus {
      return { sessions: 0, processes: 0, openRequests: open.size, ...(lastError ? { lastError } : {}) };
    },
    async close(): Promise<void> {
      for (const request of open) request.destroy();
      agent.destroy();
    },
  };
}

function copyHeaders(up: IncomingMessage, res: Response): void {
  for (const [name, value] of Object.entries(up.headers)) {
    if (value !== undefined && !DROPPED_RESPONSE_HEADER.test(name)) res.setHeader(name, value);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

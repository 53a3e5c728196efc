import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { STORE_RETRY_AFTER_SECONDS } from '../oauth/errors.js';
import { StoreUnavailableError } from '../store/types.js';
import { checkAccess } from './access-check.js';
import { GATEWAY_ERROR, sendJsonRpcError } from './json-rpc.js';
import { readJsonBody } from './request-body.js';
import type { ServerRegistry, RoutedServer } from './server-registry.js';
import type { AccessTokenVerifier } from './verified-token.js';
import { noStore } from '../net/cache-headers.js';

/**
 * CORS for browser clients (the MCP Inspector): bearer tokens travel in a header, never in
 * cookies, so any origin may call. Clients must read Mcp-Session-Id and WWW-Authenticate.
 */
function cors(res: Response): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', 'Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate');
}

function preflight(res: Response, methods: string): void {
  res.setHeader('Access-Control-Allow-Methods', methods);
  res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID');
  res.setHeader('Access-Control-Max-Age', '86400');
  res.status(204).end();
}

/**
 * Every gateway server's endpoint (Streamable HTTP: POST, GET, DELETE) and its protected
 * resource metadata (RFC 9728 §3) at /.well-known/oauth-protected-resource<path>. Anything
 * else goes on to Latchkey's own routes. One middleware, not a Router: it looks a path up in
 * two maps, so every request can pass it first for the price of those lookups.
 */
export function gatewayHandler(registry: ServerRegistry, verify: AccessTokenVerifier, logger: Logger): RequestHandler {
  const serveMetadata = (server: RoutedServer, req: Request, res: Response): void => {
    cors(res);
    if (req.method === 'OPTIONS') return preflight(res, 'GET, OPTIONS');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD, OPTIONS');
      res.status(405).json({ error: 'invalid_request', error_description: 'Use GET' });
      return;
    }
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(server.metadata);
  };

  const serveMcp = async (server: RoutedServer, req: Request, res: Response): Promise<void> => {
    cors(res);
    if (req.method === 'OPTIONS') return preflight(res, 'GET, POST, DELETE, OPTIONS');
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
      res.setHeader('Allow', 'GET, POST, DELETE, OPTIONS');
      sendJsonRpcError(res, 405, GATEWAY_ERROR, 'Method not allowed');
      return;
    }
    const access = await checkAccess(req.headers.authorization, server, verify);
    if (!access.ok) {
      res.setHeader('WWW-Authenticate', access.challenge);
      noStore(res);
      res.status(access.status).json({ error: access.error, error_description: access.description });
      return;
    }
    let body: unknown;
    let raw: Buffer | undefined;
    if (req.method === 'POST') {
      const read = await readJsonBody(req);
      if (!read.ok) {
        sendJsonRpcError(res, read.status, read.code, read.message);
        return;
      }
      ({ body, raw } = read);
      // A hidden tool is refused here, for every kind of server: the call never leaves Latchkey.
      const refusal = server.policy?.refuse(body);
      if (refusal) {
        noStore(res);
        res.status(200).json(Array.isArray(body) ? refusal : refusal[0]);
        return;
      }
    }
    await server.handler.handle(req, res, { token: access.token, body, raw });
  };

  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const mcp = registry.byPath(req.path);
    const metadata = mcp ? undefined : registry.byMetadataPath(req.path);
    if (!mcp && !metadata) {
      next();
      return;
    }
    try {
      if (mcp) await serveMcp(mcp, req, res);
      else if (metadata) serveMetadata(metadata, req, res);
    } catch (err) {
      if (err instanceof StoreUnavailableError) {
        // The token could not be checked (the database down): the client should retry shortly.
        logger.warn({ path: req.path, reason: err.reason }, 'gateway: the store is unavailable; the token could not be checked');
        if (!res.headersSent) sendJsonRpcError(res, 503, GATEWAY_ERROR, 'Latchkey cannot check tokens right now; try again shortly', [], { 'Retry-After': String(STORE_RETRY_AFTER_SECONDS) });
        else res.destroy();
        return;
      }
      logger.error({ err, path: req.path }, 'gateway request failed');
      if (!res.headersSent) sendJsonRpcError(res, 500, GATEWAY_ERROR, 'The gateway hit an unexpected condition; try again');
      else res.destroy();
    }
  };
}

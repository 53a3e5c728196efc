import type { NextFunction, Request, Response } from 'express';

/**
 * CORS for the endpoints browser-based clients (the MCP Inspector) call directly. No
 * credentials are involved, so any origin may read the responses. /authorize and the
 * consent page never get these headers.
 */
export function cors(req: Request, res: Response, next: NextFunction): void {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', 'WWW-Authenticate, Retry-After');
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, mcp-protocol-version');
    res.setHeader('Access-Control-Max-Age', '86400');
    res.status(204).end();
    return;
  }
  next();
}

import type { NextFunction, Request, Response } from 'express';
import { ENDPOINTS, endpointPaths } from '../oauth/endpoints.js';

/** Hears each finished request (src/metrics/ counts them for /metrics). */
export interface RequestObserver {
  request(endpoint: string, method: string, status: number, seconds: number): void;
}

/** Set by a router that served a request under a name of its own (the gateway: `gateway`). */
export const ENDPOINT_LOCAL = 'latchkeyEndpoint';

const BY_PATH = new Map<string, string>(endpointPaths().map(([name, p]) => [p.toLowerCase(), name]));
const UNDER = Object.entries(ENDPOINTS).filter(([name]) => name === 'admin' || name === 'assets');

/**
 * The name a request is counted under: an endpoint of the table (src/oauth/endpoints.ts),
 * or `other` (unknown paths, 404s). Never the path itself: anyone can send any path, and each
 * distinct label value would be a new series.
 */
export function endpointOf(path: string): string {
  const p = path.toLowerCase().replace(/(.)\/$/, '$1');
  const exact = BY_PATH.get(p);
  if (exact !== undefined) return exact;
  for (const [name, endpoint] of UNDER) if (p.startsWith(`${endpoint.path}/`)) return name;
  return 'other';
}

/** Times every request to its response's end and reports it to `observer`. */
export function requestMetrics(observer: RequestObserver) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const named = res.locals[ENDPOINT_LOCAL] as string | undefined;
      const url = req.originalUrl;
      const query = url.indexOf('?');
      const endpoint = named ?? endpointOf(query === -1 ? url : url.slice(0, query));
      observer.request(endpoint, req.method, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };
}

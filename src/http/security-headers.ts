import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * Helmet's headers, worked out once. Our policy has no per-request part (no nonces), so
 * helmet is run a single time at startup against a recording response, and every request
 * then gets the same headers set in one loop: the same bytes on the wire as calling helmet
 * per request, for a fraction of its cost.
 */
export function securityHeaders(options: HelmetOptions) {
  // A function-valued directive (a per-request nonce) would be computed once here and then
  // sent frozen to every request: refuse it rather than silently weaken the policy.
  const csp = options.contentSecurityPolicy;
  const directives = typeof csp === 'object' && csp.directives ? Object.entries(csp.directives) : [];
  for (const [name, value] of directives) {
    const values: unknown[] = Array.isArray(value) ? value : [value];
    if (values.some((v) => typeof v === 'function')) {
      throw new Error(`securityHeaders: the CSP directive ${name} is computed per request; precomputed headers cannot carry it`);
    }
  }
  const set = new Map<string, string | number | readonly string[]>();
  const removed = new Set<string>();
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      set.set(name, value);
      removed.delete(name.toLowerCase());
      return recorder;
    },
    removeHeader(name: string) {
      set.delete(name);
      removed.add(name.toLowerCase());
    },
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    failure = err;
  });
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error('helmet rejected its options');
  const headers = [...set];
  return (_req: Request, res: Response, next: NextFunction): void => {
    for (const [name, value] of headers) res.setHeader(name, value);
    for (const name of removed) res.removeHeader(name);
    next();
  };
}

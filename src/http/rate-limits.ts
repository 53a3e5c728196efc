import type { Request, Response } from 'express';
import { rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';
import { noStore } from './oauth-response.js';
import { CounterRateLimitStore, type RateLimitCounters } from './rate-limit-store.js';

/*
 * Per-client-IP limits. The IP comes from req.ip, which honours TRUST_PROXY: behind
 * Cloudflare Tunnel set it so the tunnel's X-Forwarded-For is believed, and nothing else.
 * express-rate-limit's own checks stay on: its ERR_ERL_UNEXPECTED_X_FORWARDED_FOR warning is
 * how an owner behind a tunnel learns to set TRUST_PROXY.
 */

/** Where a limiter counts: the backend's counters (shared by every instance on PostgreSQL), under a prefix of its own. */
export interface LimitCounting {
  counters: RateLimitCounters;
  /** Distinct per limiter, e.g. "token:". */
  prefix: string;
}

function limiter(limit: number, windowMs: number, counting: LimitCounting, refuse: (res: Response) => void): RateLimitRequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    store: new CounterRateLimitStore(counting.counters, { prefix: counting.prefix }),
    // A counter the database cannot reach lets the request through: the request itself then
    // meets the same outage and answers 503, where a limiter error would answer 500.
    passOnStoreError: true,
    handler: (_req: Request, res: Response) => {
      noStore(res);
      refuse(res);
    },
  });
}

/** For pages a person sees: a page that says what to do, not JSON. */
export const pageRateLimit = (limit: number, windowMs: number, counting: LimitCounting): RateLimitRequestHandler =>
  limiter(limit, windowMs, counting, (res) =>
    res.status(429).render('error', {
      title: 'Too many requests',
      message: 'This address sent too many authorization requests in the last minute. Wait a minute, then start the connection again from your app.',
    }),
  );

/** For the JSON endpoints: the RFC error shape. */
export const jsonRateLimit = (limit: number, windowMs: number, counting: LimitCounting): RateLimitRequestHandler =>
  limiter(limit, windowMs, counting, (res) =>
    res.status(429).json({
      error: 'temporarily_unavailable',
      error_description: 'Too many requests from this address; wait a moment and try again',
    }),
  );

import type { Request, Response } from 'express';
import { rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';

/**
 * Per-client-IP limits. The IP comes from req.ip, which honours TRUST_PROXY: behind
 * Cloudflare Tunnel set it so the tunnel's X-Forwarded-For is believed, and nothing else.
 */
/** The same limit for pages a person sees: a page that says what to do, not JSON. */
export function pageRateLimit(limit: number, windowMs: number): RateLimitRequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req: Request, res: Response) => {
      res.setHeader('Cache-Control', 'no-store');
      res.status(429).render('error', {
        title: 'Too many requests',
        message: 'This address sent too many authorization requests in the last minute. Wait a minute, then start the connection again from your app.',
      });
    },
  });
}

export function jsonRateLimit(limit: number, windowMs: number): RateLimitRequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // Its checks of our setup (trust proxy, store sharing...) run on every request; our own
    // config validation and \`latchkey doctor\` cover them.
    validate: false,
    handler: (_req: Request, res: Response) => {
      res.setHeader('Cache-Control', 'no-store');
      res.status(429).json({
        error: 'temporarily_unavailable',
        error_description: 'Too many requests from this address; wait a moment and try again',
      });
    },
  });
}

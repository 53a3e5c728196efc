import type { Request, Response } from 'express';
import { rateLimit, type RateLimitRequestHandler } from 'express-rate-limit';

/**
 * Per-client-IP limits. The IP comes from req.ip, which honours TRUST_PROXY: behind
 * Cloudflare Tunnel set it so the tunnel's X-Forwarded-For is believed, and nothing else.
 */
export function jsonRateLimit(limit: number, windowMs: number): RateLimitRequestHandler {
  return rateLimit({
    windowMs,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    handler: (_req: Request, res: Response) => {
      res.setHeader('Cache-Control', 'no-store');
      res.status(429).json({
        error: 'temporarily_unavailable',
        error_description: 'Too many requests from this address; wait a moment and try again',
      });
    },
  });
}

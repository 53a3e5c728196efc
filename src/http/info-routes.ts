import { Router, type Request, type Response } from 'express';
import { toEpochSeconds } from '../clock.js';
import type { OAuthContext } from '../oauth/context.js';
import { authorizationServerMetadata } from '../oauth/metadata.js';
import { cors } from './cors.js';

/** Discovery, statistics and health: everything here is public and holds no secret. */
export function infoRouter(ctx: OAuthContext, version: string, startedAt: number): Router {
  const router = Router();
  const metadata = authorizationServerMetadata(ctx.config);

  router.use('/.well-known/oauth-authorization-server', cors);
  router.get('/.well-known/oauth-authorization-server', (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(metadata);
  });

  router.get('/oauth/stats', async (_req: Request, res: Response) => {
    const now = ctx.clock.now();
    const counts = await ctx.store.counts(now);
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      clients: counts.clients,
      authorization_codes: counts.codes,
      access_tokens: counts.accessTokens,
      refresh_tokens: counts.refreshTokens,
      uptime_seconds: toEpochSeconds(now - startedAt),
      version,
    });
  });

  const health = async (_req: Request, res: Response): Promise<void> => {
    const status = await ctx.store.health();
    res.setHeader('Cache-Control', 'no-store');
    // A failing compaction is a warning, not an outage: every write still reaches the journal.
    const body = !status.ok
      ? { status: 'error', store: status.error }
      : status.compactionError === undefined
        ? { status: 'ok' }
        : { status: 'ok', compaction: status.compactionError };
    res.status(status.ok ? 200 : 503).json(body);
  };
  router.get('/healthz', health);
  router.get('/health', health);
  return router;
}

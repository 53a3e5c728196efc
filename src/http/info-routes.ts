import { Router, type Request, type Response } from 'express';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { healthReport, serverStats } from '../owner/server-status.js';
import { cors } from './cors.js';
import { noStore } from './oauth-response.js';

export interface InfoDeps {
  /** The authorization server metadata, worked out once at startup. */
  metadata: Record<string, unknown>;
  /** `insider`: the request proved OAUTH_INTROSPECTION_SECRET. */
  stats: (insider: boolean) => ReturnType<typeof serverStats>;
  /** Whether an Authorization header proves OAUTH_INTROSPECTION_SECRET. */
  isInsider: (authorization: string | undefined) => boolean;
  health: () => ReturnType<typeof healthReport>;
}

/** Discovery, statistics and health: everything here is public and holds no secret. */
export function infoRouter(deps: InfoDeps): Router {
  const router = Router();
  const metadataPath = ENDPOINTS.metadata.path;
  router.use(metadataPath, cors);
  router.get(metadataPath, (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(deps.metadata);
  });

  router.get(ENDPOINTS.stats.path, async (req: Request, res: Response) => {
    const body = await deps.stats(deps.isInsider(req.headers.authorization));
    noStore(res);
    res.json(body);
  });

  const health = async (_req: Request, res: Response): Promise<void> => {
    const report = await deps.health();
    noStore(res);
    res.status(report.healthy ? 200 : 503).json(report.body);
  };
  router.get(ENDPOINTS.health.path, health);
  router.get('/health', health);
  return router;
}

import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
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
  /** Counts a wrong secret, like /introspect does: /oauth/stats must not be a way to guess it. */
  limitWrongSecret: RequestHandler;
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

  const gate = (req: Request, res: Response, next: NextFunction): void => {
    if (req.headers.authorization === undefined || deps.isInsider(req.headers.authorization)) next();
    else void deps.limitWrongSecret(req, res, next);
  };
  router.get(ENDPOINTS.stats.path, gate, async (req: Request, res: Response) => {
    const body = await deps.stats(deps.isInsider(req.headers.authorization));
    noStore(res);
    res.json(body);
  });

  const health = async (_req: Request, res: Response): Promise<void> => {
    const report = await deps.health();
    noStore(res);
    res.status(report.healthy ? 200 : 503).json(report.body);
  };
  router.get([ENDPOINTS.health.path, ...ENDPOINTS.health.aliases], health);
  return router;
}

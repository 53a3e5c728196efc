import { Router, type Request, type Response } from 'express';
import { secretMatcher } from '../crypto/secrets.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { noStore } from './oauth-response.js';

export interface MetricsRouteDeps {
  /** OAUTH_METRICS_TOKEN: what the scraper sends as `Authorization: Bearer …`. */
  token: string;
  /** The Prometheus text (src/metrics/): its content type and body. */
  scrape: () => Promise<{ contentType: string; body: string }>;
}

/**
 * GET /metrics for Prometheus. Mounted only when OAUTH_METRICS_TOKEN is set (otherwise the
 * path is a plain 404), and answered only to a bearer of that token, compared in constant
 * time: the figures say how busy the server is and when it restarted. The scrape reads no
 * storage, so it answers even while the database is down.
 */
export function metricsRouter(deps: MetricsRouteDeps): Router {
  const router = Router();
  const matches = secretMatcher(deps.token);
  router.get(ENDPOINTS.metrics.path, async (req: Request, res: Response) => {
    noStore(res);
    const presented = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (presented === undefined || !matches(presented)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="latchkey-metrics"');
      res.status(401).json({ error: 'invalid_token', error_description: 'The metrics require Authorization: Bearer <OAUTH_METRICS_TOKEN>' });
      return;
    }
    const { contentType, body } = await deps.scrape();
    res.setHeader('Content-Type', contentType);
    res.send(body);
  });
  return router;
}

import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { OwnerConsole } from '../owner/owner-console.js';
import { isUnavailable } from '../oauth/errors.js';
import { serverStats } from '../owner/server-status.js';
import { clientFaultStatus, noStore, STORE_RETRY_AFTER_SECONDS } from './oauth-response.js';

/**
 * The control API the `latchkey` command uses while the daemon runs, served only on a Unix
 * socket (src/control-socket.ts: mode 0600 in a directory only the daemon's user can write;
 * only that user, and root, can connect). Every change goes through the running daemon, so
 * two processes never write the store at once. JSON in, JSON out; versioned under /v1.
 */
export interface ControlDeps {
  owner: OwnerConsole;
  stats: () => ReturnType<typeof serverStats>;
  logger: Logger;
}

const stringList = (value: unknown): string[] | undefined =>
  Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;

export function controlRouter(deps: ControlDeps): Router {
  const { owner } = deps;
  const router = Router();
  router.use(express.json({ limit: '64kb' }));

  router.get('/v1/stats', async (_req: Request, res: Response) => {
    res.json(await deps.stats());
  });

  router.get('/v1/clients', async (_req: Request, res: Response) => {
    const clients = await owner.allClients();
    res.json({
      clients: clients.map((c) => ({
        client_id: c.id,
        name: c.name,
        returns_to: c.hosts,
        registered_at: c.registeredAt,
        last_used_at: c.lastUsedAt,
        live_grants: c.grants.length,
      })),
    });
  });

  router.get('/v1/grants', async (req: Request, res: Response) => {
    const only = typeof req.query.client === 'string' ? req.query.client : undefined;
    const clients = await owner.allClients();
    const grants = clients
      .filter((c) => only === undefined || c.id === only)
      .flatMap((c) =>
        c.grants.map((g) => ({
          grant_id: g.grantId,
          client_id: c.id,
          client_name: c.name,
          scope: g.scopes.join(' '),
          resource: g.resource,
          issued_at: g.issuedAt,
          expires_at: g.expiresAt,
          refreshable: g.refreshable,
          ...(g.approvedBy !== undefined ? { approved_by: { subject: g.approvedBy.subject, email: g.approvedBy.email, name: g.approvedBy.name } } : {}),
        })),
      );
    res.json({ grants });
  });

  router.post('/v1/grants/revoke', async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const ids = stringList(body.grant_ids);
    const clientId = typeof body.client_id === 'string' ? body.client_id : undefined;
    const subject = typeof body.subject === 'string' && body.subject !== '' ? body.subject : undefined;
    if ([ids, clientId, subject].filter((v) => v !== undefined).length !== 1) {
      res.status(400).json({ error: 'send one of grant_ids (a list), client_id or subject' });
      return;
    }
    let revoked = 0;
    if (ids) for (const id of ids) if (await owner.revokeGrant(id, 'cli')) revoked++;
    if (clientId) revoked = await owner.revokeClientGrants(clientId, 'cli');
    if (subject) {
      const grants = (await owner.person(subject))?.grants.length ?? 0;
      await owner.revokePerson(subject, 'cli', 'owner');
      revoked = grants;
    }
    res.json({ revoked });
  });

  router.get('/v1/audit', async (req: Request, res: Response) => {
    const since = typeof req.query.since === 'string' && /^\d{1,16}$/.test(req.query.since) ? Number(req.query.since) : undefined;
    const limit = typeof req.query.limit === 'string' && /^\d{1,6}$/.test(req.query.limit) ? Math.min(Number(req.query.limit), 100_000) : 1000;
    const lines = await owner.auditSince(since, limit);
    res.json({ events: lines.map((l) => ({ ...l.event, who: l.who, text: l.text })) });
  });

  router.post('/v1/clients/delete', async (req: Request, res: Response) => {
    const ids = stringList((req.body as Record<string, unknown> | undefined)?.client_ids);
    if (!ids) {
      res.status(400).json({ error: 'send client_ids, a list of client ids' });
      return;
    }
    let deleted = 0;
    for (const id of ids) if (await owner.deleteClient(id, 'cli')) deleted++;
    res.json({ deleted });
  });

  router.post('/v1/devices/forget', async (_req: Request, res: Response) => {
    res.json({ forgotten: await owner.forgetDevices() });
  });

  router.post('/v1/unlock', async (_req: Request, res: Response) => {
    res.json({ cleared: await owner.unlock() });
  });

  router.use((req: Request, res: Response) => {
    res.status(404).json({ error: `no control command at ${req.method} ${req.path}` });
  });
  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    noStore(res);
    if (isUnavailable(err)) {
      res.setHeader('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
      res.status(503).json({ error: 'the store is unavailable right now (see latchkey doctor and the daemon\u2019s log); try again shortly' });
      return;
    }
    const fault = clientFaultStatus(err);
    if (fault === undefined) deps.logger.error({ err }, 'control command failed');
    res.status(fault ?? 503).json({ error: fault !== undefined ? 'the request could not be read' : 'the daemon could not do that right now; see its log' });
  });
  return router;
}

/** The control app: nothing but the control API. */
export function createControlApp(deps: ControlDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(controlRouter(deps));
  return app;
}

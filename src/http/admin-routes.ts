import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { toEpochSeconds } from '../clock.js';
import type { OAuthContext } from '../oauth/context.js';
import type { PinGuard } from '../oauth/pin-guard.js';
import { hashSecret, newSecret, safeEqual } from '../oauth/secrets.js';
import type { ClientRecord, GrantSummary } from '../store/types.js';
import { AdminSessions, type AdminSession } from './admin-sessions.js';
import { readCookie } from './cookies.js';
import { singleParams } from './params.js';

const SESSION_COOKIE = 'latchkey_admin';
const LOGIN_COOKIE = 'latchkey_admin_login';
const ADMIN_CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/** How long a sign-in form stays usable. */
const LOGIN_FORM_MS = 30 * 60_000;

/** Outcomes shown after an action; the query only picks one of these fixed texts. */
const DONE_MESSAGES: Record<string, string> = {
  'grant-revoked': 'The grant was revoked. Its tokens no longer work; the app must be approved again to reconnect.',
  'client-deleted': 'The client and everything issued to it were deleted. The app must register again to reconnect.',
  'already-gone': 'That was already gone: nothing changed.',
};

export interface AdminDeps {
  ctx: OAuthContext;
  pins: PinGuard;
  version: string;
  startedAt: number;
}

const when = (ms: number | undefined): string =>
  ms === undefined ? 'never' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

function uptime(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d} d ${h} h` : h > 0 ? `${h} h ${m} min` : `${m} min`;
}

function redirectHosts(client: ClientRecord): string[] {
  const hosts = new Set<string>();
  for (const uri of client.metadata.redirect_uris) {
    try {
      hosts.add(new URL(uri).host || uri);
    } catch {
      hosts.add(uri);
    }
  }
  return [...hosts];
}

/**
 * The owner's page: sign in with the PIN, see registered clients and their live grants,
 * revoke a grant, delete a client. Sessions are in memory (see AdminSessions) with an
 * HttpOnly, SameSite=Strict cookie scoped to /admin, Secure when the issuer is https. Every
 * form carries the session's CSRF token, every change asks for confirmation on a page of its
 * own (the CSP allows no script, so no confirm() dialogs), and helmet forbids framing.
 */
export function adminRouter(deps: AdminDeps): Router {
  const { ctx, pins } = deps;
  const router = Router();
  const sessions = new AdminSessions(ctx.clock, ctx.random, ctx.config.adminIdleTimeout * 1000);
  const secure = ctx.config.issuer.startsWith('https:');
  const cookieOptions = { httpOnly: true, secure, sameSite: 'strict' as const, path: '/admin' };
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });

  router.use('/admin', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    // Tighter than the app-wide policy (helmet adds script-src and https: fonts by default):
    // these pages use our stylesheet and forms to our own origin, nothing else.
    res.setHeader('Content-Security-Policy', ADMIN_CSP);
    next();
  });

  /** `sameForm` re-shows the form just posted: a new token would reset its attempt count. */
  const renderLogin = (res: Response, status: number, message?: string, sameForm?: string): void => {
    const token = sameForm ?? newSecret(ctx.random);
    res.cookie(LOGIN_COOKIE, token, { ...cookieOptions, maxAge: LOGIN_FORM_MS });
    res.status(status).render('admin-login', { csrf: token, message });
  };

  const renderError = (res: Response, status: number, title: string, message: string): void => {
    res.status(status).render('admin-message', { title, message });
  };

  const renderDashboard = async (req: Request, res: Response, session: AdminSession): Promise<void> => {
    const now = ctx.clock.now();
    const [clients, grants, counts, health] = await Promise.all([
      ctx.store.listClients(),
      ctx.store.listGrants(now),
      ctx.store.counts(now),
      ctx.store.health(),
    ]);
    const byClient = new Map<string, GrantSummary[]>();
    for (const g of grants) byClient.set(g.clientId, [...(byClient.get(g.clientId) ?? []), g]);
    const done = typeof req.query.done === 'string' ? DONE_MESSAGES[req.query.done] : undefined;
    res.render('admin', {
      csrf: session.csrf,
      done,
      idleMinutes: Math.round(ctx.config.adminIdleTimeout / 60),
      stats: [
        ['Clients', String(counts.clients)],
        ['Live grants', String(grants.length)],
        ['Access tokens', String(counts.accessTokens)],
        ['Refresh tokens', String(counts.refreshTokens)],
        ['Pending codes', String(counts.codes)],
        ['Uptime', uptime(toEpochSeconds(now - deps.startedAt))],
      ],
      version: deps.version,
      issuer: ctx.config.issuer,
      health,
      // Newest first: the connection the owner just made is the one they look for. Clients known
      // by a metadata document URL are never stored, only their grants: list them too, so the
      // owner can see and revoke every connection.
      clients: [
        ...clients.reverse().map((c) => ({
          id: c.clientId,
          name: c.metadata.client_name ?? 'Unnamed app',
          hosts: redirectHosts(c),
          registeredAt: when(c.issuedAt),
          lastUsedAt: when(c.lastUsedAt),
          stored: true,
        })),
        ...[...byClient.keys()]
          .filter((id) => !clients.some((c) => c.clientId === id))
          .map((id) => ({
            id,
            name: `App at ${hostOf(id)}`,
            hosts: [hostOf(id)],
            registeredAt: 'not registered (metadata document)',
            lastUsedAt: when(undefined),
            stored: false,
          })),
      ].map((c) => ({
        ...c,
        grants: (byClient.get(c.id) ?? []).map((g) => ({
          id: g.grantId,
          scopes: g.scopes,
          resource: g.resource,
          issuedAt: when(g.issuedAt),
          expiresAt: when(g.expiresAt),
          refreshable: g.refreshable,
        })),
      })),
    });
  };

  /** The session of a request, or undefined (and the sign-in page already sent). */
  const requireSession = (req: Request, res: Response): AdminSession | undefined => {
    const session = sessions.touch(readCookie(req, SESSION_COOKIE));
    if (!session) renderLogin(res, 401, 'Your session has ended. Sign in again.');
    return session;
  };

  /** Reads a form posted within a session, checking its CSRF token. */
  const sessionForm = <K extends string>(req: Request, res: Response, names: readonly K[]): { session: AdminSession; fields: Partial<Record<K | 'csrf' | 'confirm', string>> } | undefined => {
    let fields: Partial<Record<K | 'csrf' | 'confirm', string>>;
    try {
      fields = singleParams(req.body, [...names, 'csrf', 'confirm'] as const);
    } catch {
      renderError(res, 400, 'Invalid form', 'The form was not sent correctly. Go back to the owner\u2019s page and try again.');
      return undefined;
    }
    const session = requireSession(req, res);
    if (!session) return undefined;
    if (!fields.csrf || !safeEqual(fields.csrf, session.csrf)) {
      renderError(res, 403, 'Security check failed', 'This form did not come from your owner\u2019s page. Nothing was changed.');
      return undefined;
    }
    return { session, fields };
  };

  router.get('/admin', async (req: Request, res: Response) => {
    const session = sessions.touch(readCookie(req, SESSION_COOKIE));
    if (!session) return renderLogin(res, 200);
    await renderDashboard(req, res, session);
  });

  router.post('/admin/login', form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'csrf' | 'pin', string>>;
    try {
      fields = singleParams(req.body, ['csrf', 'pin']);
    } catch {
      return renderLogin(res, 400, 'The form was not sent correctly. Try again.');
    }
    const loginCookie = readCookie(req, LOGIN_COOKIE);
    if (!loginCookie || !fields.csrf || !safeEqual(loginCookie, fields.csrf)) {
      return renderLogin(res, 403, 'This sign-in form has expired or your browser blocked its cookie. Try again.');
    }
    // The form's token names the attempt, so the per-form limit works as on the consent page.
    const outcome = await pins.check(`admin:${hashSecret(loginCookie)}`, ctx.clock.now() + LOGIN_FORM_MS, fields.pin ?? '');
    switch (outcome.kind) {
      case 'ok': {
        const { cookie } = sessions.create();
        res.clearCookie(LOGIN_COOKIE, cookieOptions);
        res.cookie(SESSION_COOKIE, cookie, cookieOptions);
        ctx.logger.info('owner signed in to the owner\u2019s page');
        return res.redirect(303, '/admin');
      }
      case 'wrong':
        ctx.logger.info('wrong PIN on the owner\u2019s page');
        return renderLogin(res, 401, `That PIN is not right. ${outcome.attemptsLeft} attempt${outcome.attemptsLeft === 1 ? '' : 's'} left on this form.`, loginCookie);
      case 'request-exhausted':
        ctx.logger.warn('PIN attempts for one sign-in form exhausted');
        return renderLogin(res, 403, 'Too many wrong PINs on that form. This is a new one; wrong PINs also count towards an hourly limit.');
      case 'locked': {
        const wait = Math.max(1, Math.ceil((outcome.retryAt - ctx.clock.now()) / 1000));
        ctx.logger.warn('PIN locked out after too many failures (owner\u2019s page)');
        res.setHeader('Retry-After', String(wait));
        return renderError(res, 429, 'Too many wrong PINs', `Sign-in and approvals are paused after too many wrong PINs in the last hour. Try again after ${new Date(outcome.retryAt).toISOString().slice(11, 16)} UTC (in about ${Math.ceil(wait / 60)} minutes).`);
      }
    }
  });

  router.post('/admin/logout', form, (req: Request, res: Response) => {
    const posted = sessionForm(req, res, []);
    if (!posted) return;
    sessions.end(readCookie(req, SESSION_COOKIE));
    res.clearCookie(SESSION_COOKIE, cookieOptions);
    res.redirect(303, '/admin');
  });

  router.post('/admin/grants/revoke', form, async (req: Request, res: Response) => {
    const posted = sessionForm(req, res, ['grant_id']);
    if (!posted) return;
    const { fields, session } = posted;
    const grant = (await ctx.store.listGrants(ctx.clock.now())).find((g) => g.grantId === fields.grant_id);
    if (!grant) return res.redirect(303, '/admin?done=already-gone');
    if (fields.confirm !== 'yes') {
      const client = await ctx.store.getClient(grant.clientId);
      return res.render('admin-confirm', {
        title: 'Revoke this grant?',
        lead: `${client?.metadata.client_name ?? 'The app'} loses access at once: its access and refresh tokens stop working, and reconnecting needs your approval again.`,
        facts: [
          ['App', client?.metadata.client_name ?? grant.clientId],
          ['Access to', grant.resource],
          ['Permissions', grant.scopes.join(' ')],
          ['Issued', when(grant.issuedAt)],
        ],
        action: '/admin/grants/revoke',
        field: 'grant_id',
        value: grant.grantId,
        button: 'Revoke grant',
        csrf: session.csrf,
      });
    }
    const removed = await ctx.store.revokeGrant(grant.grantId);
    ctx.logger.info({ clientId: grant.clientId, removed }, 'owner revoked a grant');
    res.redirect(303, '/admin?done=grant-revoked');
  });

  router.post('/admin/clients/delete', form, async (req: Request, res: Response) => {
    const posted = sessionForm(req, res, ['client_id']);
    if (!posted) return;
    const { fields, session } = posted;
    const client = fields.client_id ? await ctx.store.getClient(fields.client_id) : undefined;
    if (!client) return res.redirect(303, '/admin?done=already-gone');
    if (fields.confirm !== 'yes') {
      const grants = (await ctx.store.listGrants(ctx.clock.now())).filter((g) => g.clientId === client.clientId);
      return res.render('admin-confirm', {
        title: 'Delete this client?',
        lead: `Its registration and all ${grants.length} live grant${grants.length === 1 ? '' : 's'} are deleted at once. The app gets invalid_client and must register and be approved again.`,
        facts: [
          ['App', client.metadata.client_name ?? 'Unnamed app'],
          ['Returns to', redirectHosts(client).join(', ')],
          ['Registered', when(client.issuedAt)],
          ['Client ID', client.clientId],
        ],
        action: '/admin/clients/delete',
        field: 'client_id',
        value: client.clientId,
        button: 'Delete client',
        csrf: session.csrf,
      });
    }
    await ctx.store.deleteClient(client.clientId);
    ctx.logger.info({ clientId: client.clientId }, 'owner deleted a client');
    res.redirect(303, '/admin?done=client-deleted');
  });

  router.use('/admin', (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = typeof err === 'object' && err !== null && 'status' in err ? Number((err as { status: unknown }).status) : 500;
    if (status >= 400 && status < 500) return renderError(res, 400, 'Invalid form', 'The form was not sent correctly. Nothing was changed.');
    ctx.logger.error({ err }, 'owner\u2019s page failed');
    renderError(res, 503, 'Something went wrong', 'The change could not be made right now; nothing was changed. Check the store health with latchkey doctor and try again.');
  });
  return router;
}

/** The host of a metadata-document client_id (an https URL), or the id itself. */
function hostOf(clientId: string): string {
  try {
    return new URL(clientId).host;
  } catch {
    return clientId;
  }
}

import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { formatDuration, type Clock } from '../clock.js';
import { hashSecret, newSecret, safeEqual, type RandomSource } from '../crypto/secrets.js';
import type { TokenSigner } from '../crypto/signed-token.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { isUnavailable } from '../oauth/errors.js';
import { safeDisplayText } from '../oauth/display-text.js';
import { KNOWN_DEVICE_MAX_AGE_MS, type KnownDevices } from '../oauth/known-devices.js';
import type { PinGuard } from '../oauth/pin-guard.js';
import type { AdminSession, AdminSessions } from '../owner/admin-sessions.js';
import { redirectHosts, type OwnerConsole } from '../owner/owner-console.js';
import { cookieJar, DEVICE_COOKIE, readCookie } from './cookies.js';
import { noStore, statusOf, STORE_RETRY_AFTER_SECONDS } from './oauth-response.js';
import { singleParams } from './params.js';

/** How long a sign-in form stays usable. */
const LOGIN_FORM_MS = 30 * 60_000;

/** Outcomes shown after an action; the query only picks one of these fixed texts. */
const DONE_MESSAGES: Record<string, string> = {
  'grant-revoked': 'The grant was revoked. Its tokens no longer work; the app must be approved again to reconnect.',
  'client-deleted': 'The client and everything issued to it were deleted. The app must register again to reconnect.',
  'already-gone': 'That was already gone: nothing changed.',
};

export interface AdminDeps {
  owner: OwnerConsole;
  sessions: AdminSessions;
  pins: PinGuard;
  devices: KnownDevices;
  /** Signs sign-in form tokens, so a form token is always one this server issued. */
  loginForms: TokenSigner;
  clock: Clock;
  random: RandomSource;
  logger: Logger;
  issuer: string;
  /** Cookies are Secure and __Host- prefixed when the issuer is https. */
  https: boolean;
  idleTimeoutMs: number;
}

const when = (ms: number | undefined): string => (ms === undefined ? 'never' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`);

/**
 * The owner's page: sign in with the PIN, see registered clients and their live grants,
 * revoke a grant, delete a client. What is shown and done comes from the owner console
 * (src/owner/); this file reads forms, keeps the session cookies and renders. Cookies are
 * HttpOnly, SameSite=Strict, scoped to /admin, Secure when the issuer is https. Every form
 * carries the session's CSRF token, every change asks for confirmation on a page of its own
 * (the CSP allows no script, so no confirm() dialogs), and no page can be framed.
 */
export function adminRouter(deps: AdminDeps): Router {
  const { owner, sessions, pins, logger } = deps;
  const base = ENDPOINTS.admin.path;
  const router = Router();
  const cookies = cookieJar(deps.https);
  const sessionCookie = cookies.name('latchkey_admin');
  const loginCookie = cookies.name('latchkey_admin_login');
  const deviceCookie = cookies.name(DEVICE_COOKIE);
  const cookieOptions = cookies.options('strict');
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });

  router.use(base, (_req: Request, res: Response, next: NextFunction) => {
    noStore(res);
    next();
  });

  /**
   * The sign-in form, bound to a token this server signed (a client cannot pick its own) and
   * sent both as a cookie and in the form. `sameForm` re-shows the form just posted: a new
   * token would reset its attempt count.
   */
  const renderLogin = (res: Response, status: number, message?: string, sameForm?: string): void => {
    const token = sameForm ?? deps.loginForms.sign(newSecret(deps.random));
    res.cookie(loginCookie, token, cookies.options('strict', LOGIN_FORM_MS));
    res.status(status).render('admin-login', { csrf: token, message });
  };

  const renderError = (res: Response, status: number, title: string, message: string): void => {
    res.status(status).render('admin-message', { title, message });
  };

  const renderDashboard = async (req: Request, res: Response, session: AdminSession): Promise<void> => {
    const view = await owner.overview();
    const done = typeof req.query.done === 'string' ? DONE_MESSAGES[req.query.done] : undefined;
    res.render('admin', {
      csrf: session.csrf,
      done,
      idleMinutes: Math.round(deps.idleTimeoutMs / 60_000),
      stats: [
        ['Clients', String(view.counts.clients)],
        ['Live grants', String(view.liveGrants)],
        ['Access tokens', String(view.counts.accessTokens)],
        ['Refresh tokens', String(view.counts.refreshTokens)],
        ['Pending codes', String(view.counts.codes)],
        ['Uptime', formatDuration(view.uptimeMs)],
      ],
      version: view.version,
      issuer: deps.issuer,
      health: view.health,
      clients: view.clients.map((c) => ({
        id: c.id,
        name: c.name,
        hosts: c.hosts,
        registeredAt: c.registeredAt === undefined ? 'not registered (metadata document)' : when(c.registeredAt),
        lastUsedAt: when(c.lastUsedAt),
        stored: c.registeredAt !== undefined,
        grants: c.grants.map((g) => ({
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
  const requireSession = async (req: Request, res: Response): Promise<AdminSession | undefined> => {
    const session = await sessions.touch(readCookie(req, sessionCookie));
    if (!session) renderLogin(res, 401, 'Your session has ended. Sign in again.');
    return session;
  };

  /** Reads a form posted within a session, checking its CSRF token. */
  const sessionForm = async <K extends string>(
    req: Request,
    res: Response,
    names: readonly K[],
  ): Promise<{ session: AdminSession; fields: Partial<Record<K | 'csrf' | 'confirm', string>> } | undefined> => {
    let fields: Partial<Record<K | 'csrf' | 'confirm', string>>;
    try {
      fields = singleParams(req.body, [...names, 'csrf', 'confirm'] as const);
    } catch {
      renderError(res, 400, 'Invalid form', 'The form was not sent correctly. Go back to the owner\u2019s page and try again.');
      return undefined;
    }
    const session = await requireSession(req, res);
    if (!session) return undefined;
    if (!fields.csrf || !safeEqual(fields.csrf, session.csrf)) {
      renderError(res, 403, 'Security check failed', 'This form did not come from your owner\u2019s page. Nothing was changed.');
      return undefined;
    }
    return { session, fields };
  };

  router.get(base, async (req: Request, res: Response) => {
    const session = await sessions.touch(readCookie(req, sessionCookie));
    if (!session) return renderLogin(res, 200);
    await renderDashboard(req, res, session);
  });

  router.post(`${base}/login`, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'csrf' | 'pin', string>>;
    try {
      fields = singleParams(req.body, ['csrf', 'pin']);
    } catch {
      return renderLogin(res, 400, 'The form was not sent correctly. Try again.');
    }
    const formToken = readCookie(req, loginCookie);
    if (!formToken || !fields.csrf || !safeEqual(formToken, fields.csrf) || deps.loginForms.verify(formToken) === undefined) {
      return renderLogin(res, 403, 'This sign-in form has expired or your browser blocked its cookie. Try again.');
    }
    const device = deps.devices.recognise(readCookie(req, deviceCookie));
    // The form's token names the attempt, so the per-form limit works as on the consent page.
    const outcome = await pins.check(`admin:${hashSecret(formToken)}`, deps.clock.now() + LOGIN_FORM_MS, fields.pin ?? '', {
      purpose: 'admin',
      ...(device ? { device } : {}),
    });
    const who = { ip: req.ip, knownDevice: device !== undefined };
    switch (outcome.kind) {
      case 'ok': {
        const { cookie } = await sessions.create();
        res.clearCookie(loginCookie, cookieOptions);
        res.cookie(sessionCookie, cookie, cookieOptions);
        res.cookie(deviceCookie, deps.devices.remember(device), cookies.options('lax', KNOWN_DEVICE_MAX_AGE_MS));
        logger.info(who, 'owner signed in to the owner\u2019s page');
        return res.redirect(303, base);
      }
      case 'wrong':
        logger.warn(who, 'wrong PIN on the owner\u2019s page');
        return renderLogin(res, 401, `That PIN is not right. ${outcome.attemptsLeft} attempt${outcome.attemptsLeft === 1 ? '' : 's'} left on this form.`, formToken);
      case 'request-exhausted':
        logger.warn(who, 'PIN attempts for one sign-in form exhausted');
        return renderLogin(res, 403, 'Too many wrong PINs on that form. This is a new one; wrong PINs also count towards an hourly limit.');
      case 'locked': {
        const wait = Math.max(1, Math.ceil((outcome.retryAt - deps.clock.now()) / 1000));
        logger.warn({ ...who, retryAt: new Date(outcome.retryAt).toISOString() }, 'PIN locked out after too many failures (owner\u2019s page)');
        res.setHeader('Retry-After', String(wait));
        return renderError(
          res,
          429,
          'Too many wrong PINs',
          `Sign-in from this browser is paused after too many wrong PINs in the last hour. Try again after ${new Date(outcome.retryAt).toISOString().slice(11, 16)} UTC (in about ${Math.ceil(wait / 60)} minutes). A browser where you entered the PIN before is not affected; at the server, latchkey unlock lifts the pause.`,
        );
      }
    }
  });

  router.post(`${base}/logout`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, []);
    if (!posted) return;
    await sessions.end(readCookie(req, sessionCookie));
    res.clearCookie(sessionCookie, cookieOptions);
    res.redirect(303, base);
  });

  router.post(`${base}/grants/revoke`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, ['grant_id']);
    if (!posted) return;
    const { fields, session } = posted;
    const found = await owner.grant(fields.grant_id);
    if (!found) return res.redirect(303, `${base}?done=already-gone`);
    const { grant, clientName } = found;
    if (fields.confirm !== 'yes') {
      return res.render('admin-confirm', {
        title: 'Revoke this grant?',
        lead: `${clientName ?? 'The app'} loses access at once: its access and refresh tokens stop working, and reconnecting needs your approval again.`,
        facts: [
          ['App', clientName ?? grant.clientId],
          ['Access to', grant.resource],
          ['Permissions', grant.scopes.join(' ')],
          ['Issued', when(grant.issuedAt)],
        ],
        action: `${base}/grants/revoke`,
        field: 'grant_id',
        value: grant.grantId,
        button: 'Revoke grant',
        csrf: session.csrf,
      });
    }
    const revoked = await owner.revokeGrant(grant.grantId);
    res.redirect(303, `${base}?done=${revoked ? 'grant-revoked' : 'already-gone'}`);
  });

  router.post(`${base}/clients/delete`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, ['client_id']);
    if (!posted) return;
    const { fields, session } = posted;
    const found = await owner.client(fields.client_id);
    if (!found) return res.redirect(303, `${base}?done=already-gone`);
    const { client, liveGrants } = found;
    if (fields.confirm !== 'yes') {
      return res.render('admin-confirm', {
        title: 'Delete this client?',
        lead: `Its registration and all ${liveGrants} live grant${liveGrants === 1 ? '' : 's'} are deleted at once. The app gets invalid_client and must register and be approved again.`,
        facts: [
          ['App', client.metadata.client_name ? safeDisplayText(client.metadata.client_name) : 'Unnamed app'],
          ['Returns to', redirectHosts(client).join(', ')],
          ['Registered', when(client.issuedAt)],
          ['Client ID', client.clientId],
        ],
        action: `${base}/clients/delete`,
        field: 'client_id',
        value: client.clientId,
        button: 'Delete client',
        csrf: session.csrf,
      });
    }
    const deleted = await owner.deleteClient(client.clientId);
    res.redirect(303, `${base}?done=${deleted ? 'client-deleted' : 'already-gone'}`);
  });

  router.use(base, (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const status = statusOf(err) ?? 500;
    if (status >= 400 && status < 500) return renderError(res, 400, 'Invalid form', 'The form was not sent correctly. Nothing was changed.');
    if (isUnavailable(err)) {
      // The store cannot be reached (the database down): worth trying again shortly.
      logger.warn({ reason: (err as Error).message }, 'owner\u2019s page: the store is unavailable');
      res.setHeader('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
      return renderError(res, 503, 'Temporarily unavailable', 'The server cannot reach its data right now; nothing was changed. Wait a moment and reload the page.');
    }
    logger.error({ err }, 'owner\u2019s page failed');
    renderError(res, 503, 'Something went wrong', 'The change could not be made right now; nothing was changed. Check the store health with latchkey doctor and try again.');
  });
  return router;
}

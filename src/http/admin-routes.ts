import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { type Clock, formatDuration, formatTime } from '../clock.js';
import { hashSecret, newSecret, safeEqual, type RandomSource } from '../crypto/secrets.js';
import type { TokenSigner } from '../crypto/signed-token.js';
import { isOwnerEmail, type AccessPolicy } from '../identity/access-policy.js';
import { approverLabel } from '../oauth/approver.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { isUnavailable } from '../oauth/errors.js';
import { safeDisplayText } from '../oauth/display-text.js';
import { KNOWN_DEVICE_MAX_AGE_MS, type KnownDevices } from '../oauth/known-devices.js';
import { describeLockout, type PinGuard } from '../oauth/pin-guard.js';
import { offeredProviders, startSignIn, type SignInDeps } from '../oauth/sign-in/sign-in-flow.js';
import type { AdminSession, AdminSessions } from '../owner/admin-sessions.js';
import { redirectHosts, type OwnerConsole } from '../owner/owner-console.js';
import { renderErrorPage } from './consent-page.js';
import { ADMIN_COOKIE, cookieJar, DEVICE_COOKIE, readCookie } from './cookies.js';
import { cspHeader } from './csp.js';
import { clientFaultStatus, noStore, STORE_RETRY_AFTER_SECONDS } from './oauth-response.js';
import { singleParams } from './params.js';
import { readSessionForm } from './session-form.js';
import { sendToProvider } from './sign-in-routes.js';

/** How long a sign-in form stays usable. */
const LOGIN_FORM_MS = 30 * 60_000;

/** Outcomes shown after an action; the query only picks one of these fixed texts. */
const DONE_MESSAGES: Record<string, string> = {
  'grant-revoked': 'The grant was revoked. Its tokens no longer work; the app must be approved again to reconnect.',
  'client-deleted': 'The client and everything issued to it were deleted. The app must register again to reconnect.',
  'already-gone': 'That was already gone: nothing changed.',
  'unapproved-deleted': 'Every client you never approved was deleted. Apps you approved were not touched.',
  'person-revoked': 'Every grant of that person was revoked. Their apps must be approved again, by someone allowed to, to reconnect.',
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
  /** Owners (OAUTH_OWNER_EMAILS) may sign in with a provider; the PIN always works. */
  signInFlow: SignInDeps;
  accessPolicy: AccessPolicy;
}

const when = (ms: number | undefined): string => (ms === undefined ? 'never' : formatTime(ms));

/**
 * The owner's page: sign in with the PIN, or with a provider as one of OAUTH_OWNER_EMAILS;
 * see registered clients and their live grants, the people who approved them, and the audit
 * log; revoke a grant or everything of one person, delete a client. What is shown and done
 * comes from the owner console (src/owner/); this file reads forms, keeps the session cookies
 * and renders. Cookies are HttpOnly, SameSite=Strict, Secure and __Host- prefixed when the
 * issuer is https. Every form carries the session's CSRF token, every change asks for
 * confirmation on a page of its own (the CSP allows no script, so no confirm() dialogs), and
 * no page can be framed.
 */
export function adminRouter(deps: AdminDeps): Router {
  const { owner, sessions, pins, logger } = deps;
  const base = ENDPOINTS.admin.path;
  const router = Router();
  const cookies = cookieJar(deps.https);
  const sessionCookie = cookies.name(ADMIN_COOKIE);
  const loginCookie = cookies.name('latchkey_admin_login');
  const deviceCookie = cookies.name(DEVICE_COOKIE);
  const cookieOptions = cookies.options('strict');
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });

  router.use(base, (_req: Request, res: Response, next: NextFunction) => {
    noStore(res);
    next();
  });

  // A provider's button is offered only when someone could sign in with it as an owner.
  const providers = deps.accessPolicy.ownerEmails.length > 0 ? offeredProviders(deps.signInFlow) : [];

  /**
   * The sign-in form, bound to a token this server signed (a client cannot pick its own) and
   * sent both as a cookie and in the form. `sameForm` re-shows the form just posted: a new
   * token would reset its attempt count. Its CSP allows the providers its buttons lead to.
   */
  const renderLogin = (res: Response, status: number, message?: string, sameForm?: string): void => {
    const token = sameForm ?? deps.loginForms.sign(newSecret(deps.random));
    res.cookie(loginCookie, token, cookies.options('strict', LOGIN_FORM_MS));
    if (providers.length > 0) res.setHeader('Content-Security-Policy', cspHeader(...deps.signInFlow.providers.map((p) => p.authorizationOrigin())));
    res.status(status).render('admin-login', {
      csrf: token,
      message,
      providers: providers.map((p) => ({ label: p.label, action: `${base}/login/${p.id}` })),
    });
  };

  /** Who acts in a session, for the audit log: the person who signed in, or whoever had the PIN. */
  const actorOf = (session: AdminSession): string => session.person?.subject ?? 'pin';

  const renderError = (res: Response, status: number, title: string, message: string): void => {
    res.status(status).render('admin-message', { title, message });
  };

  const renderDashboard = async (req: Request, res: Response, session: AdminSession): Promise<void> => {
    const requestedPage = typeof req.query.page === 'string' && /^\d{1,6}$/.test(req.query.page) ? Number(req.query.page) - 1 : 0;
    const unapprovedOnly = req.query.show === 'unapproved';
    const view = await owner.overview({ page: requestedPage, unapprovedOnly });
    const done = typeof req.query.done === 'string' && Object.hasOwn(DONE_MESSAGES, req.query.done) ? DONE_MESSAGES[req.query.done] : undefined;
    const pageLink = (page: number): string => `${base}?${new URLSearchParams({ ...(unapprovedOnly ? { show: 'unapproved' } : {}), page: String(page + 1) }).toString()}`;
    const people = await owner.people();
    res.render('admin', {
      csrf: session.csrf,
      done,
      signedInAs: session.person === undefined ? 'with the PIN' : `as ${approverLabel(session.person)}`,
      people: people.map((p) => ({
        subject: p.subject,
        label: approverLabel(p),
        name: approverLabel(p) !== p.name ? p.name : undefined,
        grants: p.grants.map((g) => ({ app: g.clientName, resource: g.resource, scopes: g.scopes, issuedAt: when(g.issuedAt) })),
      })),
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
      paging: {
        page: view.page + 1,
        pages: view.pages,
        total: view.totalClients,
        unapproved: view.unapprovedClients,
        unapprovedOnly,
        previous: view.page > 0 ? pageLink(view.page - 1) : undefined,
        next: view.page + 1 < view.pages ? pageLink(view.page + 1) : undefined,
      },
      gateway: view.gateway?.map((g) => ({
        name: g.name,
        kind: g.kind,
        connectorUrl: g.resource,
        // An HTTP server keeps its own sessions and runs no process of Latchkey's.
        sessions: g.kind === 'stdio' ? String(g.sessions) : 'kept by the server',
        processes: g.kind === 'stdio' ? String(g.processes) : 'none (HTTP)',
        lastError: g.lastError ? `${when(g.lastError.at)}: ${g.lastError.message}` : undefined,
      })),
      clients: view.clients.map((c) => ({
        id: c.id,
        name: c.name,
        hosts: c.hosts,
        registeredAt: c.registeredAt === undefined ? 'not registered (metadata document)' : when(c.registeredAt),
        lastUsedAt: when(c.lastUsedAt),
        stored: c.registeredAt !== undefined,
        approved: c.approved,
        grants: c.grants.map((g) => ({
          id: g.grantId,
          scopes: g.scopes,
          resource: g.resource,
          issuedAt: when(g.issuedAt),
          expiresAt: when(g.expiresAt),
          refreshable: g.refreshable,
          approvedBy: g.approvedBy === undefined ? 'the PIN' : approverLabel(g.approvedBy),
        })),
      })),
    });
  };

  /**
   * A live session whose person is still an owner: someone removed from OAUTH_OWNER_EMAILS
   * loses the owner's page at once, not when their session would have ended.
   */
  const liveSession = async (req: Request): Promise<AdminSession | undefined> => {
    const cookie = readCookie(req, sessionCookie);
    const session = await sessions.touch(cookie);
    if (session?.person !== undefined && !isOwnerEmail(session.person.email, deps.accessPolicy)) {
      await sessions.end(cookie);
      return undefined;
    }
    return session;
  };

  /** The session of a request, or undefined (and the sign-in page already sent). */
  const requireSession = async (req: Request, res: Response): Promise<AdminSession | undefined> => {
    const session = await liveSession(req);
    if (!session) renderLogin(res, 401, 'Your session has ended. Sign in again.');
    return session;
  };

  /** Reads a form posted within a session, checking its CSRF token. */
  const sessionForm = <K extends string>(req: Request, res: Response, names: readonly K[]) =>
    readSessionForm(req, names, () => requireSession(req, res), (status, title, text) => renderError(res, status, title, text), 'your owner\u2019s page');

  router.get(base, async (req: Request, res: Response) => {
    const session = await liveSession(req);
    if (!session) return renderLogin(res, 200);
    await renderDashboard(req, res, session);
  });

  /** Reads the sign-in form's token: a cookie and a field that match, and that this server signed. */
  const loginFormToken = (req: Request, posted: string | undefined): string | undefined => {
    const formToken = readCookie(req, loginCookie);
    if (!formToken || !posted || !safeEqual(formToken, posted) || deps.loginForms.verify(formToken) === undefined) return undefined;
    return formToken;
  };

  router.post(`${base}/login/:provider`, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'csrf', string>>;
    try {
      fields = singleParams(req.body, ['csrf']);
    } catch {
      return renderLogin(res, 400, 'The form was not sent correctly. Try again.');
    }
    if (loginFormToken(req, fields.csrf) === undefined) {
      return renderLogin(res, 403, 'This sign-in form has expired or your browser blocked its cookie. Try again.');
    }
    if (providers.length === 0) return renderLogin(res, 404, 'Signing in with a provider is not set up here: use the PIN.');
    const outcome = await startSignIn(deps.signInFlow, { provider: String(req.params.provider ?? ''), purpose: 'admin', ip: req.ip });
    if (outcome.kind === 'page') return renderErrorPage(res, outcome);
    sendToProvider(res, deps.https, outcome);
  });

  router.post(`${base}/login`, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'csrf' | 'pin', string>>;
    try {
      fields = singleParams(req.body, ['csrf', 'pin']);
    } catch {
      return renderLogin(res, 400, 'The form was not sent correctly. Try again.');
    }
    const formToken = loginFormToken(req, fields.csrf);
    if (formToken === undefined) {
      return renderLogin(res, 403, 'This sign-in form has expired or your browser blocked its cookie. Try again.');
    }
    const device = await deps.devices.recognise(readCookie(req, deviceCookie));
    // The form's token names the attempt, so the per-form limit works as on the consent page.
    const outcome = await pins.check(`admin:${hashSecret(formToken)}`, deps.clock.now() + LOGIN_FORM_MS, fields.pin ?? '', {
      purpose: 'admin',
      ip: req.ip,
      ...(device ? { device } : {}),
    });
    const who = { ip: req.ip, knownDevice: device !== undefined };
    switch (outcome.kind) {
      case 'ok': {
        const { cookie } = await sessions.create();
        res.clearCookie(loginCookie, cookieOptions);
        res.cookie(sessionCookie, cookie, cookieOptions);
        res.cookie(deviceCookie, await deps.devices.remember(device), cookies.options('lax', KNOWN_DEVICE_MAX_AGE_MS));
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
        const wait = describeLockout(outcome.retryAt, deps.clock.now());
        logger.warn({ ...who, retryAt: new Date(outcome.retryAt).toISOString() }, 'PIN locked out after too many failures (owner\u2019s page)');
        res.setHeader('Retry-After', String(wait.seconds));
        return renderError(
          res,
          429,
          'Too many wrong PINs',
          `Sign-in from this browser is paused after too many wrong PINs in the last hour. Try again ${wait.text}. A browser where you entered the PIN before is not affected; at the server, latchkey unlock lifts the pause.`,
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
    const revoked = await owner.revokeGrant(grant.grantId, actorOf(session));
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
    const deleted = await owner.deleteClient(client.clientId, actorOf(session));
    res.redirect(303, `${base}?done=${deleted ? 'client-deleted' : 'already-gone'}`);
  });

  router.post(`${base}/clients/delete-unapproved`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, []);
    if (!posted) return;
    const { fields, session } = posted;
    if (fields.confirm !== 'yes') {
      const { unapprovedClients } = await owner.overview({ pageSize: 1 });
      return res.render('admin-confirm', {
        title: `Delete ${unapprovedClients} never-approved client${unapprovedClients === 1 ? '' : 's'}?`,
        lead: 'Every client you never approved is deleted at once, however recently it registered. Apps you approved are not touched; an app that is in the middle of connecting must start again.',
        facts: [['Clients to delete', String(unapprovedClients)]],
        action: `${base}/clients/delete-unapproved`,
        field: 'scope',
        value: 'unapproved',
        button: 'Delete them',
        csrf: session.csrf,
      });
    }
    await owner.deleteUnapprovedClients(actorOf(session));
    res.redirect(303, `${base}?done=unapproved-deleted`);
  });

  router.post(`${base}/people/revoke`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, ['subject']);
    if (!posted) return;
    const { fields, session } = posted;
    const person = await owner.person(fields.subject);
    if (!person) return res.redirect(303, `${base}?done=already-gone`);
    if (fields.confirm !== 'yes') {
      const apps = [...new Set(person.grants.map((g) => g.clientName))];
      return res.render('admin-confirm', {
        title: 'Revoke everything of this person?',
        lead: `All ${person.grants.length} live grant${person.grants.length === 1 ? '' : 's'} this person approved end at once: their apps' access and refresh tokens stop working. They can connect again only while they are on the allow-lists.`,
        facts: [
          ['Person', approverLabel(person)],
          ['Subject', person.subject],
          ['Apps', apps.join(', ')],
        ],
        action: `${base}/people/revoke`,
        field: 'subject',
        value: person.subject,
        button: 'Revoke everything',
        csrf: session.csrf,
      });
    }
    const records = await owner.revokePerson(person.subject, actorOf(session), 'owner');
    res.redirect(303, `${base}?done=${records > 0 ? 'person-revoked' : 'already-gone'}`);
  });

  router.get(`${base}/audit`, async (req: Request, res: Response) => {
    const session = await requireSession(req, res);
    if (!session) return;
    const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' && v.length <= 512 ? v : undefined);
    const page = typeof req.query.page === 'string' && /^\d{1,6}$/.test(req.query.page) ? Number(req.query.page) - 1 : 0;
    const subject = text(req.query.subject);
    const clientId = text(req.query.client);
    const view = await owner.auditPage({ page, ...(subject !== undefined ? { subject } : {}), ...(clientId !== undefined ? { clientId } : {}) });
    const link = (p: number): string =>
      `${base}/audit?${new URLSearchParams({ ...(subject !== undefined ? { subject } : {}), ...(clientId !== undefined ? { client: clientId } : {}), page: String(p + 1) }).toString()}`;
    res.render('admin-audit', {
      subject,
      clientId,
      page: view.page + 1,
      newer: view.page > 0 ? link(view.page - 1) : undefined,
      older: view.hasOlder ? link(view.page + 1) : undefined,
      events: view.lines.map((l) => ({
        at: when(l.event.at),
        type: l.event.type,
        who: l.who,
        text: l.text,
        ip: l.event.ip,
        subject: l.event.subject,
        clientId: l.event.clientId,
      })),
    });
  });

  router.use(base, (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const fault = clientFaultStatus(err);
    if (fault !== undefined) return renderError(res, fault, 'Invalid form', 'The form was not sent correctly. Nothing was changed.');
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

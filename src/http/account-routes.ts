import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { formatTime, type Clock } from '../clock.js';
import { newSecret, safeEqual, type RandomSource } from '../crypto/secrets.js';
import type { TokenSigner } from '../crypto/signed-token.js';
import { approverLabel } from '../oauth/approver.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { isUnavailable } from '../oauth/errors.js';
import { offeredProviders, startSignIn, type SignInDeps } from '../oauth/sign-in/sign-in-flow.js';
import type { AdminSession, AdminSessions } from '../owner/admin-sessions.js';
import type { OwnerConsole } from '../owner/owner-console.js';
import { renderErrorPage } from './consent-page.js';
import { ACCOUNT_COOKIE, cookieJar, readCookie } from './cookies.js';
import { cspHeader } from './csp.js';
import { clientFaultStatus, noStore, STORE_RETRY_AFTER_SECONDS } from './oauth-response.js';
import { singleParams } from './params.js';
import { readSessionForm } from './session-form.js';
import { sendToProvider } from './sign-in-routes.js';

/** How long the sign-in page's form stays usable. */
const LOGIN_FORM_MS = 30 * 60_000;

export interface AccountDeps {
  owner: OwnerConsole;
  /** Sessions of this page, apart from the owner's. */
  sessions: AdminSessions;
  signInFlow: SignInDeps;
  /** Signs the sign-in form's token (its own purpose). */
  loginForms: TokenSigner;
  clock: Clock;
  random: RandomSource;
  logger: Logger;
  https: boolean;
}

const when = formatTime;

const DONE: Record<string, string> = {
  revoked: 'The connection was revoked: that app can no longer act as you here.',
  'all-revoked': 'Every connection you approved was revoked.',
  'already-gone': 'That was already gone: nothing changed.',
};

/**
 * /account: a person who is allowed to connect but is not an owner signs in with a provider
 * and sees, and can revoke, the connections they approved, and nobody else's (issue 12).
 * Sessions are kept like the owner's page's (backend key-value entries, HttpOnly,
 * SameSite=Strict, __Host- over https); every form carries the session's CSRF token, and
 * every revocation is confirmed on a page of its own.
 */
export function accountRouter(deps: AccountDeps): Router {
  const router = Router();
  const base = ENDPOINTS.account.path;
  const cookies = cookieJar(deps.https);
  const sessionCookie = cookies.name(ACCOUNT_COOKIE);
  const loginCookie = cookies.name('latchkey_account_login');
  const cookieOptions = cookies.options('strict');
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });
  const providers = offeredProviders(deps.signInFlow);

  router.use(base, (_req: Request, res: Response, next: NextFunction) => {
    noStore(res);
    next();
  });

  const renderLogin = (res: Response, status: number, message?: string): void => {
    if (providers.length === 0) {
      return renderErrorPage(res, { status: 404, title: 'Not available', message: 'This server does not let people sign in with an account: its owner approves connections with a PIN.' });
    }
    const token = deps.loginForms.sign(newSecret(deps.random));
    res.cookie(loginCookie, token, cookies.options('strict', LOGIN_FORM_MS));
    res.setHeader('Content-Security-Policy', cspHeader(...deps.signInFlow.providers.map((p) => p.authorizationOrigin())));
    res.status(status).render('account-login', { csrf: token, message, providers: providers.map((p) => ({ label: p.label, action: `${base}/login/${p.id}` })) });
  };

  const message = (res: Response, status: number, title: string, text: string): void => {
    res.status(status).render('account-message', { title, message: text });
  };

  /** The live session, or undefined (and the sign-in page already sent). */
  const requireSession = async (req: Request, res: Response): Promise<(AdminSession & { person: NonNullable<AdminSession['person']> }) | undefined> => {
    const session = await deps.sessions.touch(readCookie(req, sessionCookie));
    if (session?.person === undefined) {
      renderLogin(res, 401, 'Your session has ended. Sign in again.');
      return undefined;
    }
    return { ...session, person: session.person };
  };

  /** A form posted within a session, with its CSRF token checked. */
  const sessionForm = <K extends string>(req: Request, res: Response, names: readonly K[]) =>
    readSessionForm(req, names, () => requireSession(req, res), (status, title, text) => message(res, status, title, text), 'your page');

  router.get(base, async (req: Request, res: Response) => {
    const session = await deps.sessions.touch(readCookie(req, sessionCookie));
    if (session?.person === undefined) return renderLogin(res, 200);
    const mine = await deps.owner.person(session.person.subject);
    const done = typeof req.query.done === 'string' && Object.hasOwn(DONE, req.query.done) ? DONE[req.query.done] : undefined;
    res.render('account', {
      csrf: session.csrf,
      done,
      who: approverLabel(session.person),
      grants: (mine?.grants ?? []).map((g) => ({
        id: g.grantId,
        app: g.clientName,
        resource: g.resource,
        scopes: g.scopes,
        issuedAt: when(g.issuedAt),
        expiresAt: when(g.expiresAt),
        refreshable: g.refreshable,
      })),
    });
  });

  router.post(`${base}/login/:provider`, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'csrf', string>>;
    try {
      fields = singleParams(req.body, ['csrf']);
    } catch {
      return renderLogin(res, 400, 'The form was not sent correctly. Try again.');
    }
    const token = readCookie(req, loginCookie);
    if (!token || !fields.csrf || !safeEqual(token, fields.csrf) || deps.loginForms.verify(token) === undefined) {
      return renderLogin(res, 403, 'This sign-in form has expired or your browser blocked its cookie. Try again.');
    }
    const outcome = await startSignIn(deps.signInFlow, { provider: String(req.params.provider ?? ''), purpose: 'account', ip: req.ip });
    if (outcome.kind === 'page') return renderErrorPage(res, outcome);
    sendToProvider(res, deps.https, outcome);
  });

  router.post(`${base}/logout`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, []);
    if (!posted) return;
    await deps.sessions.end(readCookie(req, sessionCookie));
    res.clearCookie(sessionCookie, cookieOptions);
    res.redirect(303, base);
  });

  router.post(`${base}/grants/revoke`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, ['grant_id']);
    if (!posted) return;
    const { fields, session } = posted;
    const grant = (await deps.owner.person(session.person.subject))?.grants.find((g) => g.grantId === fields.grant_id);
    if (grant === undefined) return res.redirect(303, `${base}?done=already-gone`);
    if (fields.confirm !== 'yes') {
      return res.render('account-confirm', {
        title: 'Revoke this connection?',
        lead: `${grant.clientName} loses access at once: it can no longer act as you here, and reconnecting needs a new approval.`,
        facts: [
          ['App', grant.clientName],
          ['Access to', grant.resource],
          ['Permissions', grant.scopes.join(' ')],
          ['Approved', when(grant.issuedAt)],
        ],
        action: `${base}/grants/revoke`,
        field: 'grant_id',
        value: grant.grantId,
        button: 'Revoke connection',
        csrf: session.csrf,
      });
    }
    const revoked = await deps.owner.revokeOwnGrant(session.person.subject, grant.grantId);
    res.redirect(303, `${base}?done=${revoked ? 'revoked' : 'already-gone'}`);
  });

  router.post(`${base}/revoke-all`, form, async (req: Request, res: Response) => {
    const posted = await sessionForm(req, res, []);
    if (!posted) return;
    const { fields, session } = posted;
    const mine = await deps.owner.person(session.person.subject);
    if (mine === undefined) return res.redirect(303, `${base}?done=already-gone`);
    if (fields.confirm !== 'yes') {
      return res.render('account-confirm', {
        title: 'Revoke every connection?',
        lead: `All ${mine.grants.length} app${mine.grants.length === 1 ? '' : 's'} you approved lose access at once.`,
        facts: [['Apps', [...new Set(mine.grants.map((g) => g.clientName))].join(', ')]],
        action: `${base}/revoke-all`,
        field: 'scope',
        value: 'all',
        button: 'Revoke every connection',
        csrf: session.csrf,
      });
    }
    const records = await deps.owner.revokePerson(session.person.subject, session.person.subject, 'person');
    res.redirect(303, `${base}?done=${records > 0 ? 'all-revoked' : 'already-gone'}`);
  });

  router.use(base, (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const fault = clientFaultStatus(err);
    if (fault !== undefined) return message(res, fault, 'Invalid form', 'The form was not sent correctly. Nothing was changed.');
    if (isUnavailable(err)) {
      // The store cannot be reached (the database down): worth trying again shortly.
      deps.logger.warn({ reason: (err as Error).message }, 'account page: the store is unavailable');
      res.setHeader('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
      return message(res, 503, 'Temporarily unavailable', 'The server cannot reach its data right now; nothing was changed. Wait a moment and reload the page.');
    }
    deps.logger.error({ err }, 'account page failed');
    message(res, 503, 'Something went wrong', 'The change could not be made right now; nothing was changed. Try again in a moment.');
  });
  return router;
}

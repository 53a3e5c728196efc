import express, { Router, type Request, type Response } from 'express';
import { isOwner } from '../identity/access-policy.js';
import { approverLabel, approverOf } from '../oauth/approver.js';
import { consentAfterSignIn, startConsentSignIn, type ConsentSignInDeps } from '../oauth/consent/consent-sign-in.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { finishSignIn, type SignedIn, type ToProvider } from '../oauth/sign-in/sign-in-flow.js';
import type { AdminSessions } from '../owner/admin-sessions.js';
import { pageErrorHandler, renderConsentPage, renderErrorPage } from './consent-page.js';
import { ACCOUNT_COOKIE, ADMIN_COOKIE, cookieJar, CSRF_COOKIE, readCookie, SIGN_IN_COOKIE } from './cookies.js';
import { noStore } from './oauth-response.js';
import { singleParams } from './params.js';
import type { RateLimitCounters } from './rate-limit-store.js';
import { pageRateLimit } from './rate-limits.js';

export interface SignInRouteSettings {
  https: boolean;
  /** Per client IP, shared with /authorize: each start and callback may call a provider. */
  authorizeRequestsPerMinute: number;
  counters: RateLimitCounters;
  /** Sessions of the owner's page, for an owner who signed in there. */
  adminSessions: AdminSessions;
  /** Sessions of a person's own page. */
  accountSessions: AdminSessions;
}

/**
 * Sends the browser to the provider, keeping the signed sign-in state in an HttpOnly cookie.
 * SameSite=Lax, not Strict: the provider's redirect back is a cross-site navigation, on
 * which only a Lax cookie is sent. It lives as long as the sign-in may take.
 */
export function sendToProvider(res: Response, https: boolean, outcome: ToProvider): void {
  const cookies = cookieJar(https);
  noStore(res);
  res.cookie(cookies.name(SIGN_IN_COOKIE), outcome.cookie, cookies.options('lax', outcome.maxAgeMs));
  res.redirect(303, outcome.location);
}

/**
 * POST /login/start/<provider>: a consent page's "Continue with …" button. GET
 * /login/callback/<provider>: where every sign-in comes back (the one URL registered at the
 * provider), whatever it was for: a consent shows the consent page naming the person; the
 * owner's page and a person's own page start a session. The rules decide
 * (src/oauth/sign-in/, src/oauth/consent/consent-sign-in.ts); this reads and renders.
 */
export function signInRouter(deps: ConsentSignInDeps, settings: SignInRouteSettings): Router {
  const router = Router();
  const { logger } = deps.ctx;
  const cookies = cookieJar(settings.https);
  const startPath = `${ENDPOINTS.signInStart.path}/:provider`;
  const callbackPath = `${ENDPOINTS.signInCallback.path}/:provider`;
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 10 });
  const limit = pageRateLimit(settings.authorizeRequestsPerMinute, 60_000, { counters: settings.counters, prefix: 'authorize:' });
  const signInOrigins = (): string[] => deps.signInFlow.providers.map((p) => p.authorizationOrigin());
  const providerOf = (req: Request): string => String(req.params.provider ?? '');

  router.post(startPath, limit, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'consent', string>>;
    try {
      fields = singleParams(req.body, ['consent']);
    } catch {
      return renderErrorPage(res, { status: 400, title: 'Invalid form', message: 'The approval form was not sent correctly. Start again from your app.' });
    }
    const outcome = await startConsentSignIn(deps, { provider: providerOf(req), consent: fields.consent, csrfCookie: readCookie(req, cookies.name(CSRF_COOKIE)), ip: req.ip });
    if (outcome.kind === 'page') return renderErrorPage(res, outcome);
    sendToProvider(res, settings.https, outcome);
  });

  /**
   * A session cookie for a page whose cookies are SameSite=Strict: such a cookie is not sent
   * on a navigation that a cross-site redirect started (the provider's), so the browser is
   * moved on by a page of ours, from which the next navigation is same-site.
   */
  const startSession = async (res: Response, sessions: AdminSessions, cookieName: string, signedIn: SignedIn, next: string, title: string): Promise<void> => {
    const person = approverOf(signedIn.person);
    const { cookie } = await sessions.create(person);
    res.cookie(cookies.name(cookieName), cookie, cookies.options('strict'));
    res.status(200).render('continue', { title, message: `Signed in as ${approverLabel(person)}.`, next });
  };

  router.get(callbackPath, limit, async (req: Request, res: Response) => {
    noStore(res);
    // The state cookie is single-use whatever happens next.
    res.clearCookie(cookies.name(SIGN_IN_COOKIE), cookies.options('lax'));
    const signedIn = await finishSignIn(deps.signInFlow, {
      provider: providerOf(req),
      currentUrl: callbackQuery(req, deps.ctx.issuer),
      cookie: readCookie(req, cookies.name(SIGN_IN_COOKIE)),
      ip: req.ip,
    });
    if (signedIn.kind === 'page') return renderErrorPage(res, signedIn);
    switch (signedIn.state.purpose) {
      case 'consent': {
        const outcome = await consentAfterSignIn(deps, signedIn, readCookie(req, cookies.name(CSRF_COOKIE)));
        if (outcome.kind === 'page') return renderErrorPage(res, outcome);
        return renderConsentPage(res, outcome, signInOrigins());
      }
      case 'admin':
        if (isOwner(signedIn.person, deps.ctx.accessPolicy)) {
          return startSession(res, settings.adminSessions, ADMIN_COOKIE, signedIn, ENDPOINTS.admin.path, 'Signed in');
        }
        // Not an owner, but allowed to connect: their own connections are theirs to see.
        return startSession(res, settings.accountSessions, ACCOUNT_COOKIE, signedIn, ENDPOINTS.account.path, 'Your connections');
      case 'account':
        return startSession(res, settings.accountSessions, ACCOUNT_COOKIE, signedIn, ENDPOINTS.account.path, 'Signed in');
    }
  });

  router.all([startPath, callbackPath], (_req: Request, res: Response) => {
    renderErrorPage(res, { status: 405, title: 'Not allowed', message: 'This address only takes the sign-in buttons and the provider’s return. Start again from your app.' });
  });

  router.use(
    [startPath, callbackPath],
    pageErrorHandler(logger, {
      invalidForm: 'The form was not sent correctly. Start again from your app.',
      failed: 'The sign-in could not be completed. Start again from your app.',
    }),
  );
  return router;
}

/** The callback's query on the issuer's URL: only the query is read, never the Host header or path. */
function callbackQuery(req: Request, issuer: string): URL {
  const url = new URL(issuer);
  const q = req.originalUrl.indexOf('?');
  url.search = q >= 0 ? req.originalUrl.slice(q) : '';
  return url;
}

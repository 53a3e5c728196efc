import express, { Router, type Request, type Response } from 'express';
import { decideConsent } from '../oauth/consent/consent-decision.js';
import type { ConsentSignInDeps } from '../oauth/consent/consent-sign-in.js';
import type { ErrorPage, RedirectBack, ShowConsent } from '../oauth/consent/outcomes.js';
import { startAuthorization } from '../oauth/consent/start-authorization.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { KNOWN_DEVICE_MAX_AGE_MS, type KnownDevices } from '../oauth/known-devices.js';
import { pageErrorHandler, renderConsentPage, renderErrorPage } from './consent-page.js';
import { cookieJar, CSRF_COOKIE, DEVICE_COOKIE, readCookie } from './cookies.js';
import { noStore } from './oauth-response.js';
import { queryParams, singleParams } from './params.js';
import type { RateLimitCounters } from './rate-limit-store.js';
import { pageRateLimit } from './rate-limits.js';

const CSRF_VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface ConsentRouteSettings {
  /** Cookies are Secure and __Host- prefixed when the issuer is https. */
  https: boolean;
  authorizeRequestsPerMinute: number;
  devices: KnownDevices;
  counters: RateLimitCounters;
}

/**
 * GET /authorize shows the consent page; POST /authorize/consent takes the owner's decision.
 * The rules (src/oauth/consent/) decide; this file reads the request, keeps the CSRF cookie
 * and renders what they decided: a page, the consent form, or a redirect back to the client.
 */
export function consentRouter(deps: ConsentSignInDeps, settings: ConsentRouteSettings): Router {
  const router = Router();
  const { logger } = deps.ctx;
  const authorizePath = ENDPOINTS.authorization.path;
  const consentPath = ENDPOINTS.consent.path;
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });
  const cookies = cookieJar(settings.https);
  const csrfCookie = cookies.name(CSRF_COOKIE);
  const deviceCookie = cookies.name(DEVICE_COOKIE);

  const renderError = renderErrorPage;
  const signInOrigins = (): string[] => deps.signInFlow.providers.map((p) => p.authorizationOrigin());

  /** `redirectStatus`: 302 after GET /authorize; 303 after the consent POST (RFC 9700 §4.12: never 307). */
  const render = async (req: Request, res: Response, outcome: ErrorPage | RedirectBack | ShowConsent, redirectStatus: 302 | 303): Promise<void> => {
    switch (outcome.kind) {
      case 'page':
        return renderError(res, outcome);
      case 'redirect':
        noStore(res);
        if (outcome.rememberDevice) {
          const known = await settings.devices.recognise(readCookie(req, deviceCookie));
          res.cookie(deviceCookie, await settings.devices.remember(known), cookies.options('lax', KNOWN_DEVICE_MAX_AGE_MS));
        }
        return res.redirect(redirectStatus, outcome.location);
      case 'consent':
        return renderConsentPage(res, outcome, signInOrigins());
    }
  };

  // One limiter for both steps: every /authorize may fetch a metadata document, and every
  // consent post may check a PIN.
  const limit = pageRateLimit(settings.authorizeRequestsPerMinute, 60_000, { counters: settings.counters, prefix: 'authorize:' });

  router.get(authorizePath, limit, async (req: Request, res: Response) => {
    // Keep an existing CSRF cookie so several consent pages can be open at once. SameSite=Lax,
    // not Strict: this GET is a cross-site navigation from the host app, on which a Strict
    // cookie is not sent, so every page would replace the cookie and break the pages open
    // before it. Lax is still never sent on a cross-site POST, and the form is bound to it.
    const existing = readCookie(req, csrfCookie);
    const csrf = existing && CSRF_VALUE.test(existing) ? existing : deps.signer.newCsrfCookie();
    const outcome = await startAuthorization(deps, queryParams(req), csrf);
    if (outcome.kind === 'consent') res.cookie(csrfCookie, csrf, cookies.options('lax', 24 * 3_600_000));
    await render(req, res, outcome, 302);
  });

  router.post(consentPath, limit, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'consent' | 'pin' | 'decision', string>>;
    try {
      fields = singleParams(req.body, ['consent', 'pin', 'decision']);
    } catch {
      return renderError(res, { status: 400, title: 'Invalid form', message: 'The approval form was not sent correctly. Start again from your app.' });
    }
    const posted = {
      ...fields,
      csrfCookie: readCookie(req, csrfCookie),
      device: await settings.devices.recognise(readCookie(req, deviceCookie)),
      ip: req.ip,
    };
    await render(req, res, await decideConsent(deps, posted), 303);
  });

  router.all([authorizePath, consentPath], (_req: Request, res: Response) => {
    renderError(res, { status: 405, title: 'Not allowed', message: 'This address only takes links from your app. Start the connection again from your app.' });
  });

  router.use(
    [authorizePath, consentPath],
    pageErrorHandler(logger, {
      invalidForm: 'The approval form was not sent correctly. Start again from your app.',
      failed: 'The request could not be completed. Start the connection again from your app.',
    }),
  );
  return router;
}

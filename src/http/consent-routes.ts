import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { issueAuthorizationCode } from '../oauth/authorization-code-grant.js';
import {
  buildRedirect,
  validateAuthorizationRequest,
  type AuthorizationRequest,
} from '../oauth/authorization-request.js';
import { isClientIdMetadataUrl } from '../oauth/client-metadata-document.js';
import type { ClientResolver } from '../oauth/client-resolver.js';
import type { ConsentSigner } from '../oauth/consent.js';
import type { OAuthContext } from '../oauth/context.js';
import { OAuthError } from '../oauth/errors.js';
import type { PinGuard } from '../oauth/pin-guard.js';
import { matchRedirectUri } from '../oauth/redirect-uri.js';
import type { ClientRecord } from '../store/types.js';
import { readCookie } from './cookies.js';
import { requestFaultStatus, toOAuthError } from './oauth-response.js';
import { pageRateLimit } from './rate-limits.js';
import { queryParams, singleParams } from './params.js';

const CSRF_COOKIE = 'latchkey_csrf';

interface ErrorPage {
  status: number;
  title: string;
  message: string;
  retryAfter?: number;
}

/**
 * GET /authorize (RFC 6749 §4.1.1) shows the consent page; POST /authorize/consent takes the
 * owner's decision. Errors before the client and redirect URI are validated render a page
 * and never redirect; later errors go back to the client with state and iss (RFC 9207).
 */
export function consentRouter(
  ctx: OAuthContext,
  clients: ClientResolver,
  signer: ConsentSigner,
  pins: PinGuard,
  resources: () => readonly string[] = () => ctx.config.resources,
): Router {
  const router = Router();
  const { issuer } = ctx.config;
  const secureCookie = issuer.startsWith('https:');
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 });

  const noStore = (res: Response): void => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
  };

  const renderError = (res: Response, page: ErrorPage): void => {
    noStore(res);
    if (page.retryAfter !== undefined) res.setHeader('Retry-After', String(page.retryAfter));
    res.status(page.status).render('error', { title: page.title, message: page.message });
  };

  const redirectBack = (res: Response, redirectUri: string, params: Record<string, string | undefined>): void => {
    noStore(res);
    res.redirect(302, buildRedirect(redirectUri, { ...params, iss: issuer }));
  };

  const redirectError = (res: Response, redirectUri: string, error: OAuthError, state: string | undefined): void =>
    redirectBack(res, redirectUri, { error: error.error, error_description: error.description, state });

  const renderConsent = async (
    req: Request,
    res: Response,
    client: ClientRecord,
    request: AuthorizationRequest,
    signed: string,
    message?: string,
  ): Promise<void> => {
    noStore(res);
    // Chrome applies form-action to the redirect that follows the form post, so the
    // client's redirect target must be allowed alongside our own origin.
    const target = new URL(request.redirectUri);
    const targetSource = target.protocol === 'https:' || target.protocol === 'http:' ? target.origin : target.protocol;
    res.setHeader(
      'Content-Security-Policy',
      `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' ${targetSource}; frame-ancestors 'none'; base-uri 'none'`,
    );
    // A metadata-document client is identified by the host serving its document (the
    // client_id URL): that, unlike its self-chosen name, is something the owner can judge.
    const documentHost = isClientIdMetadataUrl(client.clientId) ? new URL(client.clientId).host : undefined;
    res.status(message ? 401 : 200).render('consent', {
      documentHost,
      documentUrl: documentHost ? client.clientId : undefined,
      clientName: client.metadata.client_name ?? 'An unnamed app',
      clientUri: client.metadata.client_uri,
      redirectHost: target.protocol === 'https:' || target.protocol === 'http:' ? target.host : target.protocol,
      redirectUri: request.redirectUri,
      scopes: request.scopes,
      resource: request.resource,
      registeredAt: new Date(client.issuedAt).toISOString().slice(0, 10),
      consent: signed,
      message,
      action: `${req.baseUrl}/authorize/consent`,
    });
  };

  // One limiter for both steps: every /authorize may fetch a metadata document, and every
  // consent post may check a PIN.
  const limit = pageRateLimit(ctx.config.authorizeRateLimit, 60_000);

  router.get('/authorize', limit, async (req: Request, res: Response) => {
    const params = queryParams(req);
    const clientId = params.client_id;
    const found = typeof clientId === 'string' && clientId ? await clients.lookup(clientId) : undefined;
    if (found?.kind === 'refused') {
      return renderError(res, {
        status: 400,
        title: 'App identity could not be checked',
        message: `This app identifies itself by the document at ${String(clientId).slice(0, 200)}, but ${found.reason}. Nothing was approved. Tell the app's developer; retrying will not help until the document is fixed.`,
      });
    }
    const client = found?.kind === 'found' ? found.client : undefined;
    const outcome = validateAuthorizationRequest(params, client, {
      validScopes: ctx.config.validScopes,
      defaultScopes: ctx.config.defaultScopes,
      resources: resources(),
    });
    if (outcome.kind === 'page') return renderError(res, outcome);
    if (outcome.kind === 'redirect') return redirectError(res, outcome.redirectUri, outcome.error, outcome.state);
    if (!client) return renderError(res, { status: 400, title: 'Unknown client', message: 'Start again from your app.' });

    // Keep an existing CSRF cookie so several consent pages can be open at once. SameSite=Lax,
    // not Strict: this GET is a cross-site navigation from the host app, on which a Strict
    // cookie is not sent, so every page would replace the cookie and break the pages open
    // before it. Lax is still never sent on a cross-site POST, and the form is bound to it.
    const existing = readCookie(req, CSRF_COOKIE);
    const csrf = existing && /^[A-Za-z0-9_-]{43}$/.test(existing) ? existing : signer.newCsrfCookie();
    res.cookie(CSRF_COOKIE, csrf, {
      httpOnly: true,
      secure: secureCookie,
      sameSite: 'lax',
      path: '/authorize',
      maxAge: 24 * 3_600_000,
    });
    await renderConsent(req, res, client, outcome.request, signer.sign(outcome.request, csrf, ctx.clock.now()));
  });

  router.post('/authorize/consent', limit, form, async (req: Request, res: Response) => {
    let fields: Partial<Record<'consent' | 'pin' | 'decision', string>>;
    try {
      fields = singleParams(req.body, ['consent', 'pin', 'decision']);
    } catch {
      return renderError(res, { status: 400, title: 'Invalid form', message: 'The approval form was not sent correctly. Start again from your app.' });
    }
    const checked = signer.verify(fields.consent, readCookie(req, CSRF_COOKIE), ctx.clock.now());
    if (!checked.ok) {
      const pages: Record<typeof checked.reason, ErrorPage> = {
        malformed: { status: 400, title: 'Invalid approval form', message: 'This approval form is incomplete or was altered. Start the connection again from your app.' },
        expired: { status: 400, title: 'This page has expired', message: 'Approval pages are valid for a limited time. Start the connection again from your app.' },
        csrf: {
          status: 403,
          title: 'Security check failed',
          message: 'Your browser did not send the security cookie for this page. Make sure cookies are allowed for this site, then start the connection again from your app.',
        },
      };
      return renderError(res, pages[checked.reason]);
    }
    const { request, id, expiresAt } = checked.pending;
    const found = await clients.lookup(request.clientId);
    const client = found.kind === 'found' ? found.client : undefined;
    if (!client || !matchRedirectUri(request.redirectUri, client.metadata.redirect_uris)) {
      return renderError(res, { status: 400, title: 'Unknown client', message: 'This app is no longer registered here. Remove the connector in your app and add it again.' });
    }

    if (fields.decision === 'deny') {
      ctx.logger.info({ clientId: client.clientId }, 'owner denied access');
      return redirectBack(res, request.redirectUri, { error: 'access_denied', error_description: 'The owner denied access', state: request.state });
    }
    if (fields.decision !== 'approve') {
      return renderError(res, { status: 400, title: 'Invalid form', message: 'Choose Approve or Deny. Start again from your app if the page looks broken.' });
    }

    const outcome = await pins.check(id, expiresAt, fields.pin ?? '');
    switch (outcome.kind) {
      case 'locked': {
        const wait = Math.max(1, Math.ceil((outcome.retryAt - ctx.clock.now()) / 1000));
        ctx.logger.warn({ clientId: client.clientId }, 'PIN locked out after too many failures');
        return renderError(res, {
          status: 429,
          title: 'Too many wrong PINs',
          message: `Approvals are paused after too many wrong PINs in the last hour. Try again after ${new Date(outcome.retryAt).toISOString().slice(11, 16)} UTC (in about ${Math.ceil(wait / 60)} minutes).`,
          retryAfter: wait,
        });
      }
      case 'request-exhausted':
        ctx.logger.warn({ clientId: client.clientId }, 'PIN attempts for one request exhausted');
        return renderError(res, { status: 403, title: 'Too many wrong PINs', message: 'This approval request is closed after too many wrong PINs. Start the connection again from your app.' });
      case 'wrong':
        ctx.logger.info({ clientId: client.clientId }, 'wrong PIN');
        return renderConsent(req, res, client, request, fields.consent ?? '', `That PIN is not right. ${outcome.attemptsLeft} attempt${outcome.attemptsLeft === 1 ? '' : 's'} left for this request.`);
      case 'ok': {
        const code = await issueAuthorizationCode(ctx, request);
        ctx.logger.info({ clientId: client.clientId, scopes: request.scopes, resource: request.resource }, 'owner approved access');
        return redirectBack(res, request.redirectUri, { code, state: request.state });
      }
    }
  });

  router.all(['/authorize', '/authorize/consent'], (_req: Request, res: Response) => {
    renderError(res, { status: 405, title: 'Not allowed', message: 'This address only takes links from your app. Start the connection again from your app.' });
  });

  router.use(['/authorize', '/authorize/consent'], (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    // The form parser refuses an oversized form, too many fields or an unsupported charset
    // with an error carrying a `type`: that is the sender's fault, a 4xx page, not a 500.
    const faultStatus = requestFaultStatus(err);
    if (faultStatus !== undefined) {
      return renderError(res, {
        status: faultStatus,
        title: 'Invalid form',
        message: 'The approval form was not sent correctly. Start again from your app.',
      });
    }
    const error = toOAuthError(err, ctx.logger);
    renderError(res, error.status === 503
      ? { status: 503, title: 'Temporarily unavailable', message: 'The server cannot save data right now. Wait a moment and try again.', retryAfter: 5 }
      : { status: error.status >= 500 ? 500 : 400, title: 'Something went wrong', message: 'The request could not be completed. Start the connection again from your app.' });
  });
  return router;
}

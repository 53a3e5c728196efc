import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { isClientIdMetadataUrl } from '../oauth/client-metadata-document.js';
import { approverLabel } from '../oauth/approver.js';
import type { ErrorPage, ShowConsent } from '../oauth/consent/outcomes.js';
import { safeDisplayText } from '../oauth/display-text.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { cspHeader } from './csp.js';
import { toOAuthError } from '../oauth/errors.js';
import { noStore, requestFaultStatus, STORE_RETRY_AFTER_SECONDS } from './oauth-response.js';

/**
 * The pages of the consent flow, shared by the consent routes and the sign-in callback: the
 * consent page (with the PIN, the providers' buttons, or naming who signed in) and the error
 * page, which never redirects.
 */

export function renderErrorPage(res: Response, page: Omit<ErrorPage, 'kind'>): void {
  noStore(res);
  if (page.retryAfter !== undefined) res.setHeader('Retry-After', String(page.retryAfter));
  res.status(page.status).render('error', { title: page.title, message: page.message, link: page.link });
}

/**
 * The error handler of the pages a person reaches from their app (consent, sign-in): a form
 * the parser refused is the sender's fault (a 4xx page, never a 500); a store that cannot be
 * reached is worth another try (503 with Retry-After); anything else is a plain page saying
 * what to do next. `texts` are the page-specific sentences.
 */
export function pageErrorHandler(logger: Logger, texts: { invalidForm: string; failed: string }) {
  return (err: unknown, _req: Request, res: Response, _next: NextFunction): void => {
    // The form parser refuses an oversized form, too many fields or an unsupported charset
    // with an error carrying a `type`.
    const faultStatus = requestFaultStatus(err);
    if (faultStatus !== undefined) return renderErrorPage(res, { status: faultStatus, title: 'Invalid form', message: texts.invalidForm });
    const error = toOAuthError(err, logger);
    renderErrorPage(
      res,
      error.status === 503
        ? { status: 503, title: 'Temporarily unavailable', message: 'The server cannot save data right now. Wait a moment and try again.', retryAfter: STORE_RETRY_AFTER_SECONDS }
        : { status: error.status >= 500 ? 500 : 400, title: 'Something went wrong', message: texts.failed },
    );
  };
}

/** A resource URL as people read it: host and path, without scheme or a trailing slash. */
const resourceLabel = (resource: string): string => {
  const url = new URL(resource);
  return `${url.host}${url.pathname}`.replace(/\/$/, '');
};

/**
 * `signInOrigins`: where the providers' buttons lead. Chrome applies form-action to the
 * redirect after a form post, so the page allows them beside the client's redirect target.
 */
export function renderConsentPage(res: Response, outcome: ShowConsent, signInOrigins: readonly string[]): void {
  const { client, request, form, message, person, signIn } = outcome;
  noStore(res);
  const target = new URL(request.redirectUri);
  const web = target.protocol === 'https:' || target.protocol === 'http:';
  res.setHeader('Content-Security-Policy', cspHeader(web ? target.origin : target.protocol, ...(person === undefined ? signInOrigins : [])));
  // A metadata-document client is identified by the host serving its document (the
  // client_id URL): that, unlike its self-chosen name, is something the owner can judge.
  const documentHost = isClientIdMetadataUrl(client.clientId) ? new URL(client.clientId).host : undefined;
  res.status(message ? 401 : 200).render('consent', {
    documentHost,
    documentUrl: documentHost ? client.clientId : undefined,
    clientName: client.metadata.client_name ? safeDisplayText(client.metadata.client_name) : 'An unnamed app',
    clientUri: client.metadata.client_uri && safeDisplayText(client.metadata.client_uri),
    // A native app's private-use scheme says little by itself: show the whole URI.
    redirectHost: web ? target.host : request.redirectUri,
    redirectUri: request.redirectUri,
    scopes: request.scopes,
    resource: request.resource,
    resourceLabel: resourceLabel(request.resource),
    registeredAt: new Date(client.issuedAt).toISOString().slice(0, 10),
    consent: form,
    message,
    action: ENDPOINTS.consent.path,
    person: person === undefined ? undefined : { label: approverLabel(person), email: person.email, name: person.name },
    pin: signIn.pin,
    providers: signIn.providers.map((p) => ({ label: p.label, action: `${ENDPOINTS.signInStart.path}/${p.id}` })),
  });
}

import type { Response } from 'express';
import { isClientIdMetadataUrl } from '../oauth/client-metadata-document.js';
import { approverLabel } from '../oauth/approver.js';
import type { ErrorPage, ShowConsent } from '../oauth/consent/outcomes.js';
import { safeDisplayText } from '../oauth/display-text.js';
import { ENDPOINTS } from '../oauth/endpoints.js';
import { cspHeader } from './csp.js';
import { noStore } from './oauth-response.js';

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

import { consentApproved, consentDenied } from '../../audit/audit-events.js';
import { buildRedirect } from '../authorization-request.js';
import { issueAuthorizationCode } from '../grants/authorization-code.js';
import type { KeyValueStore } from '../../store/types.js';
import { describeLockout, type PinGuard } from '../pin-guard.js';
import { matchRedirectUri } from '../redirect-uri.js';
import { redirectsAutomatically } from '../redirect-trust.js';
import type { ClientRecord } from '../../store/types.js';
import type { ConsentCheck, PendingConsent } from './consent-form.js';
import { errorPage, returnLinkPage, type ErrorPage, type RedirectBack, type ShowConsent } from './outcomes.js';
import type { StartAuthorizationDeps } from './start-authorization.js';

export interface ConsentDecisionDeps extends StartAuthorizationDeps {
  pins: PinGuard;
  /** Where used consent forms are remembered until they expire (single use, across instances). */
  kv: Pick<KeyValueStore, 'putIfAbsent'>;
}

/** The namespace of consent forms that produced a code. */
const USED_FORMS = 'consent-used';

/** The consent form as posted, with what the request tells about the browser. */
export interface PostedConsent {
  consent?: string;
  pin?: string;
  decision?: string;
  csrfCookie: string | undefined;
  /** A known device (from its verified device cookie). */
  device: string | undefined;
  /** The client address as TRUST_PROXY sees it, for the log. */
  ip: string | undefined;
}

const FORM_REFUSALS: Record<Extract<ConsentCheck, { ok: false }>['reason'], ErrorPage> = {
  malformed: errorPage(400, 'Invalid approval form', 'This approval form is incomplete or was altered. Start the connection again from your app.'),
  expired: errorPage(400, 'This page has expired', 'Approval pages are valid for a limited time. Start the connection again from your app.'),
  csrf: errorPage(
    403,
    'Security check failed',
    'Your browser did not send the security cookie for this page. Make sure cookies are allowed for this site, then start the connection again from your app.',
  ),
};


/** The consent form's verdict on a posted form: its pending consent, or the page that refuses it. */
export function verifyConsentForm(deps: Pick<ConsentDecisionDeps, 'signer' | 'ctx'>, consent: string | undefined, csrfCookie: string | undefined): PendingConsent | ErrorPage {
  const checked = deps.signer.verify(consent, csrfCookie, deps.ctx.clock.now());
  return checked.ok ? checked.pending : FORM_REFUSALS[checked.reason];
}

/**
 * POST /authorize/consent: the decision. The signed form must verify for this browser; the
 * client must still be registered with that redirect URI; Deny goes back with access_denied;
 * Approve needs either a form signed after the person signed in with a provider (it names
 * them), or the PIN, within its limits, when OAUTH_LOGIN offers it; then it issues the code.
 */
export async function decideConsent(deps: ConsentDecisionDeps, posted: PostedConsent): Promise<ErrorPage | RedirectBack | ShowConsent> {
  const { ctx } = deps;
  const pending = verifyConsentForm(deps, posted.consent, posted.csrfCookie);
  if ('kind' in pending) return pending;
  const { request, id, expiresAt, approver } = pending;
  const found = await deps.clients.lookup(request.clientId);
  const client = found.kind === 'found' ? found.client : undefined;
  if (!client || !matchRedirectUri(request.redirectUri, client.metadata.redirect_uris)) {
    return errorPage(400, 'Unknown client', 'This app is no longer registered here. Remove the connector in your app and add it again.');
  }
  const back = (params: Record<string, string | undefined>): RedirectBack => ({
    kind: 'redirect',
    location: buildRedirect(request.redirectUri, { ...params, state: request.state, iss: ctx.issuer }),
  });

  const facts = { person: approver, clientId: client.clientId, clientName: client.metadata.client_name, scopes: request.scopes, resource: request.resource, ip: posted.ip };
  if (posted.decision === 'deny') {
    await ctx.audit.record(consentDenied(facts));
    // Deny needs no PIN: anyone holding the page can press it, so the log says what happened, not who.
    ctx.logger.info({ clientId: client.clientId, ip: posted.ip }, 'access denied on the consent page');
    const denied = back({ error: 'access_denied', error_description: 'The owner denied access' });
    if (redirectsAutomatically(request.redirectUri, client, deps.trustedRedirectHosts)) return denied;
    return returnLinkPage(200, 'Access denied', 'You denied access; nothing was approved.', denied.location);
  }
  if (posted.decision !== 'approve') {
    return errorPage(400, 'Invalid form', 'Choose Approve or Deny. Start again from your app if the page looks broken.');
  }

  if (approver !== undefined) return issue(deps, pending, client, posted.ip, back);
  if (!deps.signIn.pin) {
    return errorPage(
      403,
      'Sign in to approve',
      'This server approves connections after you sign in with your account. Start the connection again from your app and use the sign-in button.',
    );
  }

  const outcome = await deps.pins.check(id, expiresAt, posted.pin ?? '', {
    purpose: 'consent',
    ip: posted.ip,
    clientId: client.clientId,
    ...(posted.device ? { device: posted.device } : {}),
  });
  // Every failure and lockout is logged with where it came from, so an owner can block it.
  const who = { clientId: client.clientId, ip: posted.ip, knownDevice: posted.device !== undefined };
  switch (outcome.kind) {
    case 'locked': {
      const wait = describeLockout(outcome.retryAt, ctx.clock.now());
      ctx.logger.warn({ ...who, retryAt: new Date(outcome.retryAt).toISOString() }, 'PIN locked out after too many failures');
      return errorPage(
        429,
        'Too many wrong PINs',
        `Approvals from this browser are paused after too many wrong PINs in the last hour. Try again ${wait.text}. A browser where you entered the PIN before is not affected; the server's owner can also run latchkey unlock.`,
        wait.seconds,
      );
    }
    case 'request-exhausted':
      ctx.logger.warn(who, 'PIN attempts for one request exhausted');
      return errorPage(403, 'Too many wrong PINs', 'This approval request is closed after too many wrong PINs. Start the connection again from your app.');
    case 'wrong':
      ctx.logger.warn(who, 'wrong PIN');
      return {
        kind: 'consent',
        client,
        request,
        form: posted.consent ?? '',
        signIn: deps.signIn,
        message: `That PIN is not right. ${outcome.attemptsLeft} attempt${outcome.attemptsLeft === 1 ? '' : 's'} left for this request.`,
      };
    case 'ok': {
      const approved = await issue(deps, pending, client, posted.ip, back);
      return approved.kind === 'redirect' ? { ...approved, rememberDevice: true } : approved;
    }
  }
}

/** Approve: issue the code once per form, trust the client from now on, and say so in the audit log. */
async function issue(
  deps: ConsentDecisionDeps,
  pending: PendingConsent,
  client: ClientRecord,
  ip: string | undefined,
  back: (params: Record<string, string | undefined>) => RedirectBack,
): Promise<RedirectBack | ErrorPage> {
  const { ctx } = deps;
  const { request, id, expiresAt, approver } = pending;
  // A form is used once: the same form and cookie posted again (a double click, a replayed
  // request) never yields a second code.
  if (!(await deps.kv.putIfAbsent(USED_FORMS, id, String(ctx.clock.now()), expiresAt, ctx.clock.now()))) {
    return errorPage(409, 'This approval was already given', 'This approval form has already been used, and its code sent to the app. If the app did not connect, start the connection again from your app.');
  }
  const { code, grantId } = await issueAuthorizationCode(ctx, request, approver);
  // From now on the owner trusts this client: errors may go back to it automatically, and
  // it never expires as unused.
  await deps.clients.markApproved(client.clientId, ctx.clock.now());
  await ctx.audit.record(
    consentApproved({ person: approver, clientId: client.clientId, clientName: client.metadata.client_name, scopes: request.scopes, resource: request.resource, ip, grantId }),
  );
  ctx.logger.info({ clientId: client.clientId, scopes: request.scopes, resource: request.resource, ip, subject: approver?.subject }, 'access approved');
  return back({ code });
}

import { approverOf } from '../approver.js';
import { startSignIn, type SignedIn, type SignInDeps, type ToProvider } from '../sign-in/sign-in-flow.js';
import { verifyConsentForm, type ConsentDecisionDeps } from './consent-decision.js';
import { errorPage, type ErrorPage, type ShowConsent } from './outcomes.js';

/**
 * Sign-in with a provider inside the consent flow (issue 12, "The flow"): the consent page's
 * "Continue with …" button posts its signed form here; the person signs in at the provider;
 * back at the callback, the same pending consent is shown again naming them, in a form
 * signed with who they are, so Approve needs no PIN. Each step is bound to the browser (the
 * CSRF cookie, the sign-in cookie) and survives a restart (signed forms and cookies, claims
 * in the backend).
 */
export interface ConsentSignInDeps extends ConsentDecisionDeps {
  signInFlow: SignInDeps;
}

export interface PostedSignIn {
  provider: string;
  consent?: string | undefined;
  csrfCookie: string | undefined;
  ip: string | undefined;
}

/** POST /login/start/<provider>: the form must verify for this browser, as a consent POST must. */
export async function startConsentSignIn(deps: ConsentSignInDeps, posted: PostedSignIn): Promise<ToProvider | ErrorPage> {
  const pending = verifyConsentForm(deps, posted.consent, posted.csrfCookie);
  if ('kind' in pending) return pending;
  return startSignIn(deps.signInFlow, {
    provider: posted.provider,
    purpose: 'consent',
    consent: posted.consent ?? '',
    clientId: pending.request.clientId,
    ip: posted.ip,
  });
}

/**
 * After a sign-in for a consent (GET /login/callback/<provider>): the consent page again,
 * naming who signed in. The consent form kept in the sign-in cookie must still verify for
 * this browser.
 */
export async function consentAfterSignIn(deps: ConsentSignInDeps, signedIn: SignedIn, csrfCookie: string | undefined): Promise<ShowConsent | ErrorPage> {
  const pending = verifyConsentForm(deps, signedIn.state.consent, csrfCookie);
  if ('kind' in pending) return pending;
  const found = await deps.clients.lookup(pending.request.clientId);
  if (found.kind !== 'found') {
    return errorPage(400, 'Unknown client', 'This app is no longer registered here. Remove the connector in your app and add it again.');
  }
  const person = approverOf(signedIn.person);
  return { kind: 'consent', client: found.client, request: pending.request, form: deps.signer.signFor(pending, person), signIn: deps.signIn, person };
}

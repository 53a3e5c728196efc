import type { ClientResolver } from '../client-resolver.js';
import type { OAuthContext } from '../context.js';
import { buildRedirect, validateAuthorizationRequest, type Params } from '../authorization-request.js';
import type { ConsentSigner } from './consent-form.js';
import { redirectsAutomatically } from '../redirect-trust.js';
import { errorPage, returnLinkPage, type ErrorPage, type RedirectBack, type ShowConsent, type SignInChoice } from './outcomes.js';

export interface StartAuthorizationDeps {
  ctx: OAuthContext;
  clients: Pick<ClientResolver, 'lookup' | 'markApproved'>;
  signer: ConsentSigner;
  /** OAUTH_LOGIN: the PIN, the providers' buttons, or both. */
  signIn: SignInChoice;
  /** OAUTH_TRUSTED_REDIRECT_HOSTS: see redirectsAutomatically. */
  trustedRedirectHosts: readonly string[];
}

/**
 * GET /authorize (RFC 6749 §4.1.1): finds the client (registered, or by its metadata
 * document), validates the request, and either shows the consent page with a form signed for
 * this browser's CSRF cookie, or an error: on a page until client and redirect URI are
 * validated, back to the client after that.
 */
export async function startAuthorization(
  deps: StartAuthorizationDeps,
  params: Params,
  csrfCookie: string,
): Promise<ShowConsent | ErrorPage | RedirectBack> {
  const { ctx } = deps;
  const clientId = params.client_id;
  const found = typeof clientId === 'string' && clientId ? await deps.clients.lookup(clientId) : undefined;
  if (found?.kind === 'busy') {
    return errorPage(503, 'Try again in a minute', `This app identifies itself by the document at ${String(clientId).slice(0, 200)}, which this server cannot fetch right now (${found.reason}). Nothing is wrong with the app. Start the connection again from your app in a minute.`, 60);
  }
  if (found?.kind === 'refused') {
    return errorPage(
      400,
      'App identity could not be checked',
      `This app identifies itself by the document at ${String(clientId).slice(0, 200)}, but ${found.reason}. Nothing was approved. Tell the app's developer; retrying will not help until the document is fixed.`,
    );
  }
  const client = found?.kind === 'found' ? found.client : undefined;
  const outcome = validateAuthorizationRequest(params, client, {
    validScopes: ctx.scopes.valid,
    defaultScopes: ctx.scopes.defaults,
    resources: ctx.resources(),
  });
  if (outcome.kind === 'page') return errorPage(outcome.status, outcome.title, outcome.message);
  if (!client) return errorPage(400, 'Unknown client', 'Start again from your app.');
  if (outcome.kind === 'redirect') {
    const { error, state } = outcome;
    const location = buildRedirect(outcome.redirectUri, { error: error.error, error_description: error.description, state, iss: ctx.issuer });
    if (redirectsAutomatically(outcome.redirectUri, client, deps.trustedRedirectHosts)) return { kind: 'redirect', location };
    return returnLinkPage(400, 'This request cannot be approved', `The app sent a request this server cannot accept (${error.error}: ${error.description}).`, location);
  }
  return { kind: 'consent', client, request: outcome.request, form: deps.signer.sign(outcome.request, csrfCookie, ctx.clock.now()), signIn: deps.signIn };
}

import type { ClientRecord } from '../store/types.js';
import { OAuthError, invalidRequest, unauthorizedClient } from './errors.js';
import { isValidS256Challenge } from './pkce.js';
import { matchRedirectUri } from './redirect-uri.js';
import { resolveResource } from './resource.js';
import { resolveRequestedScopes } from './scopes.js';

/** A validated authorization request, ready for the owner's consent. */
export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  state?: string;
  codeChallenge: string;
  scopes: string[];
  resource: string;
}

/**
 * Where an error may go (the idea comes from workers-oauth-provider): until client and
 * redirect URI are validated, an error is shown locally and never redirects; after that it
 * goes back to the client's redirect URI with state and iss.
 */
export type AuthorizationOutcome =
  | { kind: 'ok'; request: AuthorizationRequest }
  | { kind: 'page'; status: number; title: string; message: string }
  | { kind: 'redirect'; redirectUri: string; error: OAuthError; state?: string };

/** Query parameters; an array means the parameter was repeated. */
export type Params = Record<string, string | string[] | undefined>;

export interface AuthorizationPolicy {
  validScopes: readonly string[];
  defaultScopes: readonly string[];
  resources: readonly string[];
}

const MAX_STATE_LENGTH = 2000;

function single(params: Params, name: string): { value?: string; repeated: boolean } {
  const v = params[name];
  if (Array.isArray(v)) return { repeated: true };
  return { value: v, repeated: false };
}

export function validateAuthorizationRequest(
  params: Params,
  lookupClient: ClientRecord | undefined,
  policy: AuthorizationPolicy,
): AuthorizationOutcome {
  const clientId = single(params, 'client_id');
  if (clientId.repeated) return page('Invalid request', 'The client_id parameter was sent more than once.');
  if (!clientId.value) {
    return page('Missing client', 'This authorization link has no client_id. Start the connection again from your app.');
  }
  if (!lookupClient) {
    return page(
      'Unknown client',
      'This app is not registered with this server (perhaps it was deleted, or registered with another server). Remove the connector in your app and add it again: it will register anew.',
    );
  }
  const redirect = single(params, 'redirect_uri');
  if (redirect.repeated) return page('Invalid request', 'The redirect_uri parameter was sent more than once.');
  let redirectUri = redirect.value;
  const registered = lookupClient.metadata.redirect_uris;
  if (redirectUri === undefined || redirectUri === '') {
    // RFC 6749 §3.1.2.3: optional only when exactly one URI is registered.
    if (registered.length !== 1 || registered[0] === undefined) {
      return page('Missing redirect URI', 'The app did not say where to return after approval. Start the connection again from your app.');
    }
    redirectUri = registered[0];
  } else if (!matchRedirectUri(redirectUri, registered)) {
    return page(
      'Redirect URI not registered',
      'The app asked to return to an address it did not register. For your safety the request was stopped here. Remove the connector in your app and add it again.',
    );
  }

  // From here on errors go back to the client (RFC 6749 §4.1.2.1), with state and iss.
  const state = single(params, 'state');
  const stateValue = state.repeated || (state.value?.length ?? 0) > MAX_STATE_LENGTH ? undefined : state.value;
  const back = (error: OAuthError): AuthorizationOutcome => ({ kind: 'redirect', redirectUri: redirectUri, error, ...(stateValue !== undefined ? { state: stateValue } : {}) });

  for (const name of ['response_type', 'state', 'code_challenge', 'code_challenge_method', 'scope', 'resource']) {
    if (single(params, name).repeated) return back(invalidRequest(`The ${name} parameter was sent more than once`));
  }
  if ((state.value?.length ?? 0) > MAX_STATE_LENGTH) return back(invalidRequest('The state parameter is too long'));

  const responseType = single(params, 'response_type').value;
  if (responseType !== 'code') {
    return back(new OAuthError('unsupported_response_type', 'Only response_type=code is supported'));
  }
  if (!lookupClient.metadata.grant_types.includes('authorization_code')) {
    return back(unauthorizedClient('This client did not register the authorization_code grant'));
  }
  const challenge = single(params, 'code_challenge').value;
  const method = single(params, 'code_challenge_method').value;
  if (!challenge) return back(invalidRequest('PKCE is required: send code_challenge with code_challenge_method=S256'));
  if (method !== 'S256') return back(invalidRequest('code_challenge_method must be S256 (plain is not allowed)'));
  if (!isValidS256Challenge(challenge)) return back(invalidRequest('code_challenge is not a valid S256 challenge'));

  let resource: string;
  try {
    resource = resolveResource(single(params, 'resource').value, policy.resources);
  } catch (err) {
    if (err instanceof OAuthError) return back(err);
    throw err;
  }
  const scopes = resolveRequestedScopes(single(params, 'scope').value, policy.validScopes, policy.defaultScopes);

  return {
    kind: 'ok',
    request: {
      clientId: lookupClient.clientId,
      redirectUri,
      ...(stateValue !== undefined ? { state: stateValue } : {}),
      codeChallenge: challenge,
      scopes,
      resource,
    },
  };
}

function page(title: string, message: string): AuthorizationOutcome {
  return { kind: 'page', status: 400, title, message };
}

/** The redirect for an authorization response (RFC 6749 §4.1.2), always with iss (RFC 9207). */
export function buildRedirect(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [key, value] of Object.entries(params)) if (value !== undefined) url.searchParams.append(key, value);
  return url.href;
}

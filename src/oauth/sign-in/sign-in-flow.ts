import type { Logger } from 'pino';
import { signInFailed, signInSucceeded, type SignInPurpose } from '../../audit/audit-events.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Clock } from '../../clock.js';
import { hashSecret } from '../../crypto/secrets.js';
import { checkAccess, type AccessPolicy } from '../../identity/access-policy.js';
import { LoginError, type LoginFailureReason, type LoginProvider } from '../../identity/login-provider.js';
import type { LoginProviderId, Person } from '../../identity/person.js';
import { loginError } from '../../identity/relying-party-errors.js';
import type { KeyValueStore } from '../../store/types.js';
import { approverOf } from '../approver.js';
import { errorPage, type ErrorPage } from '../consent/outcomes.js';
import { ENDPOINTS } from '../endpoints.js';
import { SIGN_IN_TTL_MS, type SignInState, type SignInStates } from './sign-in-state.js';

/**
 * Signing a person in with a provider, for whatever it is for (a consent, the owner's page,
 * a person's own page): send the browser to the provider with a transaction kept in a
 * signed cookie, and on its return check everything before trusting who came back. The
 * protocol work is the provider's (src/identity/, openid-client); this decides the order,
 * the single use of each callback, the allow-lists, and what is recorded.
 */
export interface SignInDeps {
  /** The providers OAUTH_LOGIN offers, in its order. */
  providers: readonly LoginProvider[];
  /** Who may connect (OAUTH_ALLOWED_*, OAUTH_OWNER_EMAILS). */
  policy: AccessPolicy;
  /** OAUTH_ISSUER_URL: the callback URLs registered at the providers start with it. */
  issuer: string;
  states: SignInStates;
  /** Where claimed callback states are remembered until they expire. */
  kv: Pick<KeyValueStore, 'putIfAbsent'>;
  audit: Pick<AuditLog, 'record'>;
  clock: Clock;
  logger: Logger;
}

/** The namespace of callback states already used. */
const USED_STATES = 'signin-state';

/** The callback URL to register at a provider, exactly: `<OAUTH_ISSUER_URL>/login/callback/<oidc|github>`. */
export const callbackUrl = (issuer: string, provider: LoginProviderId): string => `${issuer}${ENDPOINTS.signInCallback.path}/${provider}`;

export interface StartSignIn {
  provider: string;
  purpose: SignInPurpose;
  consent?: string;
  clientId?: string;
  ip?: string | undefined;
}

/** Off to the provider: the browser keeps `cookie` (the signed state) for `maxAgeMs`. */
export interface ToProvider {
  kind: 'to-provider';
  location: string;
  cookie: string;
  maxAgeMs: number;
}

export interface SignedIn {
  kind: 'signed-in';
  person: Person;
  state: SignInState;
}

const STATUS: Record<LoginFailureReason, number> = {
  'state-mismatch': 400,
  denied: 403,
  'provider-unreachable': 503,
  'provider-error': 400,
  'invalid-response': 400,
  'invalid-id-token': 400,
};

/** The providers to offer as buttons. */
export const offeredProviders = (deps: Pick<SignInDeps, 'providers'>): { id: LoginProviderId; label: string }[] =>
  deps.providers.map((p) => ({ id: p.id, label: p.label }));

const findProvider = (deps: SignInDeps, id: string): LoginProvider | undefined => deps.providers.find((p) => p.id === id);

const unknownProvider = (): ErrorPage =>
  errorPage(404, 'Unknown sign-in method', 'This server does not offer that way of signing in. Start again from the page that sent you here.');

export async function startSignIn(deps: SignInDeps, request: StartSignIn): Promise<ToProvider | ErrorPage> {
  const provider = findProvider(deps, request.provider);
  if (provider === undefined) return unknownProvider();
  try {
    const { url, transaction } = await provider.start(callbackUrl(deps.issuer, provider.id));
    const state: SignInState = {
      transaction,
      purpose: request.purpose,
      ...(request.consent !== undefined ? { consent: request.consent } : {}),
      ...(request.clientId !== undefined ? { clientId: request.clientId } : {}),
      expiresAt: deps.clock.now() + SIGN_IN_TTL_MS,
    };
    return { kind: 'to-provider', location: url, cookie: deps.states.seal(state), maxAgeMs: SIGN_IN_TTL_MS };
  } catch (err) {
    if (!(err instanceof LoginError)) throw err;
    return failed(deps, provider, err, { purpose: request.purpose, ip: request.ip, clientId: request.clientId });
  }
}

export interface FinishSignIn {
  provider: string;
  /** The callback's URL as requested; only its query is read. */
  currentUrl: URL;
  /** The sign-in cookie, as the browser sent it back. */
  cookie: string | undefined;
  ip?: string | undefined;
}

/**
 * The provider's callback. In order: the cookie must be one Latchkey signed, unexpired, for
 * this provider; its state is claimed once (a replayed callback stops here, before the
 * provider is asked anything); the provider checks its answer (state, code with PKCE, ID
 * token); the person must be on the allow-lists. Each refusal is a page and an audit event,
 * except a callback that brings no sign-in cookie at all (see below).
 */
export async function finishSignIn(deps: SignInDeps, callback: FinishSignIn): Promise<SignedIn | ErrorPage> {
  const provider = findProvider(deps, callback.provider);
  if (provider === undefined) return unknownProvider();
  const now = deps.clock.now();
  const state = deps.states.open(callback.cookie, now);
  const where = { purpose: state?.purpose, ip: callback.ip, clientId: state?.clientId };
  const mismatch = (why: string): Promise<ErrorPage> => failed(deps, provider, loginError('state-mismatch', provider.label, why), where);
  if (!callback.cookie) {
    // No sign-in was started in this browser, so there is nobody and nothing to record: anyone
    // can send such requests, and each audit event is a durable write kept for
    // OAUTH_AUDIT_RETENTION. A log line says it happened; a cookie that does not verify, or a
    // replayed state, is still an audit event (docs/identity.md, "The audit log").
    const err = loginError('state-mismatch', provider.label, 'no sign-in cookie');
    deps.logger.warn({ provider: provider.id, reason: err.reason, detail: err.detail, ip: callback.ip }, 'sign-in callback without a sign-in cookie');
    return refusalPage(err);
  }
  if (state === undefined) return mismatch('sign-in cookie invalid or expired');
  if (state.transaction.provider !== provider.id) return mismatch(`sign-in started with ${state.transaction.provider}`);
  if (!(await deps.kv.putIfAbsent(USED_STATES, hashSecret(state.transaction.state), String(now), state.expiresAt, now))) {
    return mismatch('callback replayed: its state was used before');
  }
  let person: Person;
  try {
    person = await provider.finish(callback.currentUrl, state.transaction, callbackUrl(deps.issuer, provider.id));
  } catch (err) {
    if (!(err instanceof LoginError)) throw err;
    return failed(deps, provider, err, where);
  }
  const access = checkAccess(person, deps.policy);
  if (!access.allowed) {
    await deps.audit.record(signInFailed({ provider: provider.id, ...where, reason: access.reason, person }));
    deps.logger.warn({ provider: provider.id, reason: access.reason, subject: person.subject }, 'sign-in refused: not on the allow-lists');
    return errorPage(403, 'You cannot connect to this server', access.message);
  }
  // As the grant will record them: an e-mail only when the provider vouched for it.
  await deps.audit.record(signInSucceeded({ provider: provider.id, person: approverOf(person), purpose: state.purpose, ip: callback.ip, clientId: state.clientId }));
  deps.logger.info({ provider: provider.id, subject: person.subject, purpose: state.purpose }, 'signed in with a provider');
  return { kind: 'signed-in', person, state };
}

async function failed(
  deps: SignInDeps,
  provider: LoginProvider,
  err: LoginError,
  where: { purpose: SignInPurpose | undefined; ip: string | undefined; clientId: string | undefined },
): Promise<ErrorPage> {
  await deps.audit.record(signInFailed({ provider: provider.id, ...where, reason: err.reason, why: err.detail }));
  deps.logger.warn({ provider: provider.id, reason: err.reason, detail: err.detail }, 'sign-in failed');
  return refusalPage(err);
}

function refusalPage(err: LoginError): ErrorPage {
  const page = errorPage(STATUS[err.reason], 'Sign-in did not work', err.message);
  return err.reason === 'provider-unreachable' ? { ...page, retryAfter: 60 } : page;
}

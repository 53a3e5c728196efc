import type { AuditEvent } from '../store/types.js';

/**
 * The events of the audit log (issue 12), one typed constructor each, so every event of a
 * type has the same shape wherever it is recorded. An event says who did what to whom and
 * from where; it never holds a token, code, secret, PIN or cookie (only ids, subjects,
 * addresses, scopes and reasons), so the log can be read and shipped without care.
 */

/** An event before the log stamps its time. */
export type AuditEntry = Omit<AuditEvent, 'at'>;

/**
 * Who did it: a person's subject (`oidc:…`, `github:…`), `pin` (whoever typed the PIN),
 * `cli` (the owner at the server's command line), `client` (an app, through an endpoint),
 * `anyone` (an unauthenticated caller) or `system` (Latchkey itself, by a rule).
 */
export type AuditActor = string;

/** Why a grant was revoked. */
export type RevocationReason =
  /** The owner, on /admin or with `latchkey revoke`. */
  | 'owner'
  /** The person who approved it, on their /account page. */
  | 'person'
  /** The app, at the revocation endpoint (RFC 7009). */
  | 'revocation-endpoint'
  /** A used authorization code presented again (RFC 6749 §4.1.2). */
  | 'code-replay'
  /** A rotated refresh token used after its grace window (RFC 9700 §4.14.2). */
  | 'refresh-reuse'
  /** Its approver is no longer on the allow-lists (checked at refresh). */
  | 'allow-list-removal';

/** What a sign-in was for. */
export type SignInPurpose = 'consent' | 'admin' | 'account';

/** The person an event concerns, as recorded on their grants. */
export interface PersonRef {
  subject: string;
  email?: string | undefined;
}

const present = <T extends Record<string, unknown>>(fields: T): Partial<T> =>
  Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Detail values the store accepts: strings, numbers, booleans and string lists. */
type Detail = Record<string, string | number | boolean | string[] | undefined>;

const detail = (fields: Detail): NonNullable<AuditEvent['detail']> => present(fields) as NonNullable<AuditEvent['detail']>;

export function clientRegistered(e: { clientId: string; clientName?: string | undefined; ip?: string | undefined; authMethod: string }): AuditEntry {
  return { type: 'client.registered', actor: 'anyone', ...present({ clientId: e.clientId, clientName: e.clientName, ip: e.ip }), detail: { authMethod: e.authMethod } };
}

/** One client deleted by the owner. */
export function clientDeleted(e: { clientId: string; clientName?: string | undefined; actor: AuditActor; grants: number }): AuditEntry {
  return { type: 'client.deleted', actor: e.actor, ...present({ clientId: e.clientId, clientName: e.clientName }), detail: { reason: 'owner', grants: e.grants } };
}

/**
 * Clients deleted in bulk: never approved, by the owner's sweep (`never-approved`), because
 * they went unused for OAUTH_UNUSED_CLIENT_TTL (`unused`), or the oldest never-approved one
 * evicted to make room for a registration at OAUTH_MAX_CLIENTS (`cap`).
 */
export function clientsDeleted(e: { count: number; actor: AuditActor; reason: 'never-approved' | 'unused' | 'cap' }): AuditEntry {
  return { type: 'client.deleted', actor: e.actor, detail: { reason: e.reason, count: e.count } };
}

export function signInSucceeded(e: { person: PersonRef; provider: string; purpose: SignInPurpose; ip?: string | undefined; clientId?: string | undefined }): AuditEntry {
  return {
    type: 'signin.succeeded',
    actor: e.person.subject,
    subject: e.person.subject,
    ...present({ clientId: e.clientId, ip: e.ip }),
    detail: detail({ provider: e.provider, purpose: e.purpose, email: e.person.email }),
  };
}

export function signInFailed(e: {
  provider: string;
  purpose: SignInPurpose | undefined;
  reason: string;
  /** The library's error code or the failing claim's name: never a token, code or secret. */
  why?: string | undefined;
  person?: PersonRef | undefined;
  ip?: string | undefined;
  clientId?: string | undefined;
}): AuditEntry {
  return {
    type: 'signin.failed',
    actor: e.person?.subject ?? 'anyone',
    ...present({ subject: e.person?.subject, clientId: e.clientId, ip: e.ip }),
    detail: detail({ provider: e.provider, purpose: e.purpose, reason: e.reason, email: e.person?.email, why: e.why?.slice(0, 300) }),
  };
}

interface ConsentFacts {
  /** The person who decided, or undefined when the PIN was used (or a denial needed none). */
  person: PersonRef | undefined;
  clientId: string;
  clientName?: string | undefined;
  scopes: string[];
  resource: string;
  ip?: string | undefined;
}

export function consentApproved(e: ConsentFacts & { grantId: string }): AuditEntry {
  return {
    type: 'consent.approved',
    actor: e.person?.subject ?? 'pin',
    ...present({ subject: e.person?.subject, clientId: e.clientId, clientName: e.clientName, ip: e.ip }),
    detail: detail({ scopes: e.scopes, resource: e.resource, grant: e.grantId, email: e.person?.email }),
  };
}

export function consentDenied(e: ConsentFacts): AuditEntry {
  return {
    type: 'consent.denied',
    actor: e.person?.subject ?? 'anyone',
    ...present({ subject: e.person?.subject, clientId: e.clientId, clientName: e.clientName, ip: e.ip }),
    detail: detail({ scopes: e.scopes, resource: e.resource, email: e.person?.email }),
  };
}

/** Where a PIN was typed: the source address, and the app whose consent page it was (none on the owner's page). */
interface PinPlace {
  purpose: string;
  ip?: string | undefined;
  clientId?: string | undefined;
  knownDevice: boolean;
}

/** A wrong PIN, on the consent page or the owner's page. */
export function pinFailed(e: PinPlace & { formClosed: boolean }): AuditEntry {
  return {
    type: 'pin.failed',
    actor: 'anyone',
    ...present({ clientId: e.clientId, ip: e.ip }),
    detail: { purpose: e.purpose, knownDevice: e.knownDevice, formClosed: e.formClosed },
  };
}

/** The wrong PIN that used up an hourly budget: attempts from that budget pause until `until`. */
export function pinLockedOut(e: PinPlace & { until: number }): AuditEntry {
  return {
    type: 'pin.locked',
    actor: 'anyone',
    ...present({ clientId: e.clientId, ip: e.ip }),
    detail: { purpose: e.purpose, knownDevice: e.knownDevice, until: new Date(e.until).toISOString() },
  };
}

export function grantRevoked(e: {
  actor: AuditActor;
  reason: RevocationReason;
  clientId: string;
  clientName?: string | undefined;
  grantId: string;
  person?: PersonRef | undefined;
  ip?: string | undefined;
  /** What went: the whole grant, or one access token (RFC 7009 §2.1). */
  what?: 'grant' | 'access-token';
}): AuditEntry {
  return {
    type: 'grant.revoked',
    actor: e.actor,
    ...present({ subject: e.person?.subject, clientId: e.clientId, clientName: e.clientName, ip: e.ip }),
    detail: detail({ reason: e.reason, grant: e.grantId, what: e.what ?? 'grant', email: e.person?.email }),
  };
}

/** Every grant of one person, revoked at once. */
export function personRevoked(e: { actor: AuditActor; reason: 'owner' | 'person'; person: PersonRef; records: number }): AuditEntry {
  return {
    type: 'grant.revoked',
    actor: e.actor,
    subject: e.person.subject,
    detail: detail({ reason: e.reason, what: 'every grant of the person', records: e.records, email: e.person.email }),
  };
}

/** At startup: how people sign in and where data lives. Names and counts only, never a secret. */
export function configurationLoaded(e: {
  version: string;
  issuer: string;
  signIn: string[];
  providers: string[];
  backend: string;
  allowListEntries: number;
  owners: number;
}): AuditEntry {
  return {
    type: 'config.loaded',
    actor: 'system',
    detail: {
      version: e.version,
      issuer: e.issuer,
      signIn: e.signIn,
      providers: e.providers,
      backend: e.backend,
      allowListEntries: e.allowListEntries,
      owners: e.owners,
    },
  };
}

/** The gateway file re-read on SIGHUP (`systemctl reload`): which servers came, went or changed. */
export function configurationReloaded(e: { added: string[]; removed: string[]; changed: string[] }): AuditEntry {
  return { type: 'config.reloaded', actor: 'system', detail: { added: e.added, removed: e.removed, changed: e.changed } };
}

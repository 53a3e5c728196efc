import type { AuditEvent } from '../store/types.js';

/**
 * One line per audit event for people: the owner's page and `latchkey audit` print the same
 * words. Built only from the event's own fields, which never hold a secret.
 */

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const list = (v: unknown): string | undefined => (Array.isArray(v) ? v.join(' ') : undefined);

/** Who, as people read it: an e-mail when the event has one, else the actor. */
export function auditWho(event: AuditEvent): string {
  const email = str(event.detail?.email);
  const actor = event.actor ?? 'system';
  if (email !== undefined && actor === event.subject) return email;
  switch (actor) {
    case 'pin':
      return 'someone with the PIN';
    case 'cli':
      return 'the owner (command line)';
    case 'client':
      return 'the app';
    case 'anyone':
      return 'someone';
    case 'system':
      return 'Latchkey';
    default:
      return actor;
  }
}

const app = (event: AuditEvent): string => (event.clientName !== undefined ? `"${event.clientName}"` : (event.clientId ?? 'an app'));

const REVOKE_REASONS: Record<string, string> = {
  owner: 'by the owner',
  person: 'by the person who approved it',
  'revocation-endpoint': 'by the app (revocation endpoint)',
  'code-replay': 'because its authorization code was used twice',
  'refresh-reuse': 'because an old refresh token was reused',
  'allow-list-removal': 'because its approver is no longer on the allow-lists',
};

/** What happened, in one sentence. */
export function describeAuditEvent(event: AuditEvent): string {
  const d = event.detail ?? {};
  const who = auditWho(event);
  switch (event.type) {
    case 'client.registered':
      return `${app(event)} registered (${str(d.authMethod) ?? 'unknown'} client)`;
    case 'client.deleted':
      return event.clientId !== undefined
        ? `${who} deleted ${app(event)} and its ${String(d.grants ?? 0)} live grant(s)`
        : `${String(d.count ?? 0)} ${str(d.reason) === 'unused' ? 'unused' : 'never-approved'} client(s) deleted by ${who}${str(d.reason) === 'cap' ? ' to make room under OAUTH_MAX_CLIENTS' : ''}`;
    case 'signin.succeeded':
      return `${who} signed in with ${str(d.provider) ?? 'a provider'} (${str(d.purpose) ?? 'sign-in'})`;
    case 'signin.failed':
      return `sign-in with ${str(d.provider) ?? 'a provider'} refused: ${str(d.reason) ?? 'unknown'}${str(d.email) !== undefined ? ` for ${str(d.email)}` : ''}${str(d.why) !== undefined ? ` (${str(d.why)})` : ''}`;
    case 'consent.approved':
      return `${who} approved ${app(event)} for ${list(d.scopes) ?? ''} on ${str(d.resource) ?? ''}`;
    case 'consent.denied':
      return `${who} denied ${app(event)} (${list(d.scopes) ?? ''} on ${str(d.resource) ?? ''})`;
    case 'pin.failed':
      return `wrong PIN on the ${str(d.purpose) === 'admin' ? 'owner’s page' : `consent page of ${app(event)}`}${d.knownDevice === true ? ' from a known browser' : ''}${d.formClosed === true ? '; that form is closed' : ''}`;
    case 'pin.locked':
      return `PIN entry paused until ${str(d.until) ?? '?'} after too many wrong PINs (${str(d.purpose) === 'admin' ? 'owner’s page' : `consent page of ${app(event)}`})`;
    case 'grant.revoked': {
      if (event.clientId === undefined) {
        return `every grant approved by ${str(d.email) ?? event.subject ?? 'a person'} revoked ${REVOKE_REASONS[str(d.reason) ?? ''] ?? ''} (${String(d.records ?? 0)} codes and tokens)`;
      }
      const what = str(d.what) === 'access-token' ? 'an access token' : 'a grant';
      return `${what} of ${app(event)} revoked ${REVOKE_REASONS[str(d.reason) ?? ''] ?? ''}${str(d.email) !== undefined && event.subject !== undefined ? ` (approved by ${str(d.email)})` : ''}`.trim();
    }
    case 'config.loaded':
      return `Latchkey ${str(d.version) ?? ''} started: sign-in by ${list(d.signIn) ?? 'pin'}, ${str(d.backend) ?? ''} backend`;
    case 'config.reloaded': {
      const part = (label: string, v: unknown): string | undefined => (list(v) ? `${label} ${list(v) ?? ''}` : undefined);
      const parts = [part('added', d.added), part('removed', d.removed), part('changed', d.changed)].filter((x) => x !== undefined);
      return `gateway file reloaded: ${parts.length > 0 ? parts.join('; ') : 'no server changed'}`;
    }
    default:
      return event.type;
  }
}

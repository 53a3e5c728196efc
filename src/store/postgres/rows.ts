import type { AccessTokenRecord, Approver, AuditEvent, ClientMetadata, ClientRecord, CodeRecord, RefreshTokenRecord } from '../records.js';

/**
 * Table rows ↔ records. Columns are snake_case and NULL where a record leaves a field out;
 * records never carry a field set to undefined, so they compare equal to what was stored.
 */

export interface ClientRow {
  client_id: string;
  client_secret_hash: string | null;
  issued_at: number;
  last_used_at: number | null;
  approved_at: number | null;
  metadata: ClientMetadata;
}

export interface GrantRow {
  hash: string;
  client_id: string;
  grant_id: string;
  scopes: string[];
  resource: string;
  issued_at: number;
  expires_at: number;
  approved_by: Approver | null;
}

export interface CodeRow extends GrantRow {
  redirect_uri: string;
  code_challenge: string;
  consumed_at: number | null;
}

export interface RefreshRow extends GrantRow {
  rotated_at: number | null;
}

export interface AuditRow {
  at: number;
  type: string;
  actor: string | null;
  subject: string | null;
  client_id: string | null;
  client_name: string | null;
  ip: string | null;
  detail: AuditEvent['detail'] | null;
}

export const CLIENT_COLUMNS = 'client_id, client_secret_hash, issued_at, last_used_at, approved_at, metadata';
export const CODE_COLUMNS = 'hash, client_id, grant_id, redirect_uri, code_challenge, scopes, resource, issued_at, expires_at, consumed_at, approved_by';
export const ACCESS_COLUMNS = 'hash, client_id, grant_id, scopes, resource, issued_at, expires_at, approved_by';
export const REFRESH_COLUMNS = 'hash, client_id, grant_id, scopes, resource, issued_at, expires_at, rotated_at, approved_by';

/** Copies the fields whose value is not null. */
function present<T extends object>(fields: { [K in keyof T]: T[K] | null }): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T)[]) {
    const value = fields[key];
    if (value !== null && value !== undefined) out[key] = value as T[keyof T];
  }
  return out;
}

export const clientFromRow = (r: ClientRow): ClientRecord => ({
  clientId: r.client_id,
  ...present({ clientSecretHash: r.client_secret_hash }),
  issuedAt: r.issued_at,
  metadata: r.metadata,
  ...present({ lastUsedAt: r.last_used_at, approvedAt: r.approved_at }),
});

const grantFields = (r: GrantRow): AccessTokenRecord => ({
  hash: r.hash,
  clientId: r.client_id,
  grantId: r.grant_id,
  scopes: r.scopes,
  resource: r.resource,
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
});

export const codeFromRow = (r: CodeRow): CodeRecord => {
  const { hash, clientId, grantId, scopes, resource, issuedAt, expiresAt } = grantFields(r);
  return {
    hash,
    clientId,
    grantId,
    redirectUri: r.redirect_uri,
    codeChallenge: r.code_challenge,
    scopes,
    resource,
    issuedAt,
    expiresAt,
    ...present({ consumedAt: r.consumed_at, approvedBy: r.approved_by }),
  };
};

export const accessFromRow = (r: GrantRow): AccessTokenRecord => ({ ...grantFields(r), ...present({ approvedBy: r.approved_by }) });

export const refreshFromRow = (r: RefreshRow): RefreshTokenRecord => ({ ...grantFields(r), ...present({ rotatedAt: r.rotated_at, approvedBy: r.approved_by }) });

export const auditFromRow = (r: AuditRow): AuditEvent => ({
  at: r.at,
  type: r.type,
  ...present({ actor: r.actor, subject: r.subject, clientId: r.client_id, clientName: r.client_name, ip: r.ip, detail: r.detail }),
});

/** The parameters of an access token row, in ACCESS_COLUMNS order. */
export const accessParams = (t: AccessTokenRecord): unknown[] => [t.hash, t.clientId, t.grantId, t.scopes, t.resource, t.issuedAt, t.expiresAt, json(t.approvedBy)];

/** The parameters of a refresh token row, in REFRESH_COLUMNS order. */
export const refreshParams = (t: RefreshTokenRecord): unknown[] => [
  t.hash,
  t.clientId,
  t.grantId,
  t.scopes,
  t.resource,
  t.issuedAt,
  t.expiresAt,
  t.rotatedAt ?? null,
  json(t.approvedBy),
];

/** A JSON column's parameter: the text, or NULL for a field left out. */
export const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value));

/**
 * The PostgreSQL schema, as numbered migrations applied in order at startup (or by
 * `latchkey migrate`). A migration, once released, never changes: a new one is added.
 * Times are epoch milliseconds (BIGINT), as in the records; credentials are SHA-256 hashes,
 * never raw values. docs/storage.md describes every table.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'clients, codes, tokens, key-value entries, counters, audit log, consent key',
    sql: `
CREATE TABLE clients (
  client_id          text PRIMARY KEY,
  client_secret_hash text,
  issued_at          bigint NOT NULL,
  last_used_at       bigint,
  approved_at        bigint,
  -- json, not jsonb: the registered metadata is echoed back exactly as it was stored.
  metadata           json NOT NULL,
  -- Registration order among clients registered in the same millisecond.
  stored_seq         bigserial NOT NULL
);
CREATE INDEX clients_by_registration ON clients (issued_at, stored_seq);
CREATE INDEX clients_unapproved ON clients (issued_at, stored_seq) WHERE approved_at IS NULL;

CREATE TABLE codes (
  hash           text PRIMARY KEY,
  client_id      text NOT NULL,
  grant_id       text NOT NULL,
  redirect_uri   text NOT NULL,
  code_challenge text NOT NULL,
  scopes         text[] NOT NULL,
  resource       text NOT NULL,
  issued_at      bigint NOT NULL,
  expires_at     bigint NOT NULL,
  consumed_at    bigint,
  approved_by    jsonb
);
CREATE INDEX codes_by_grant ON codes (grant_id);
CREATE INDEX codes_by_client ON codes (client_id);
CREATE INDEX codes_by_expiry ON codes (expires_at);
CREATE INDEX codes_by_subject ON codes ((approved_by ->> 'subject')) WHERE approved_by IS NOT NULL;

CREATE TABLE access_tokens (
  hash        text PRIMARY KEY,
  client_id   text NOT NULL,
  grant_id    text NOT NULL,
  scopes      text[] NOT NULL,
  resource    text NOT NULL,
  issued_at   bigint NOT NULL,
  expires_at  bigint NOT NULL,
  approved_by jsonb
);
CREATE INDEX access_tokens_by_grant ON access_tokens (grant_id);
CREATE INDEX access_tokens_by_client ON access_tokens (client_id);
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_at);
CREATE INDEX access_tokens_by_subject ON access_tokens ((approved_by ->> 'subject')) WHERE approved_by IS NOT NULL;

CREATE TABLE refresh_tokens (
  hash        text PRIMARY KEY,
  client_id   text NOT NULL,
  grant_id    text NOT NULL,
  scopes      text[] NOT NULL,
  resource    text NOT NULL,
  issued_at   bigint NOT NULL,
  expires_at  bigint NOT NULL,
  rotated_at  bigint,
  approved_by jsonb
);
CREATE INDEX refresh_tokens_by_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_by_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_by_subject ON refresh_tokens ((approved_by ->> 'subject')) WHERE approved_by IS NOT NULL;

CREATE TABLE kv_entries (
  namespace  text NOT NULL,
  key        text NOT NULL,
  value      text NOT NULL,
  expires_at bigint,
  PRIMARY KEY (namespace, key)
);
CREATE INDEX kv_entries_by_expiry ON kv_entries (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE counters (
  key      text PRIMARY KEY,
  count    integer NOT NULL,
  reset_at bigint NOT NULL
);
CREATE INDEX counters_by_reset ON counters (reset_at);

CREATE TABLE audit_events (
  id          bigserial PRIMARY KEY,
  at          bigint NOT NULL,
  type        text NOT NULL,
  actor       text,
  subject     text,
  client_id   text,
  client_name text,
  ip          text,
  detail      jsonb
);
CREATE INDEX audit_events_by_time ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_by_subject ON audit_events (subject, at DESC) WHERE subject IS NOT NULL;
CREATE INDEX audit_events_by_client ON audit_events (client_id, at DESC) WHERE client_id IS NOT NULL;

-- The HMAC key that signs consent forms: one row, shared by every instance.
CREATE TABLE consent_key (
  id         smallint PRIMARY KEY CHECK (id = 1),
  key        bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 2,
    name: 'the number of clients, kept by triggers',
    sql: `
-- The number of registered clients, kept as clients come and go: every registration checks
-- it against OAUTH_MAX_CLIENTS, and count(*) costs a scan of the whole table (750 us of the
-- server's time at 15,000 clients, most of a registration). Spread over up to 16 rows, one
-- per connection (by backend pid), so concurrent registrations do not wait on each other's
-- commit; the count is their sum. Row triggers cover every way a client is added or removed;
-- TRUNCATE empties the count with the table.
-- An instance of the previous version may be registering clients right now: hold them off
-- until the triggers exist, so the first count is exact.
LOCK TABLE clients IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE client_count (
  shard smallint PRIMARY KEY,
  n     bigint NOT NULL
);
INSERT INTO client_count (shard, n) SELECT 0, count(*) FROM clients;

CREATE FUNCTION client_count_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO client_count (shard, n) VALUES (pg_backend_pid() % 16, CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END)
    ON CONFLICT (shard) DO UPDATE SET n = client_count.n + EXCLUDED.n;
  RETURN NULL;
END;
$$;
CREATE TRIGGER clients_counted AFTER INSERT OR DELETE ON clients FOR EACH ROW EXECUTE FUNCTION client_count_row();

CREATE FUNCTION client_count_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM client_count;
  RETURN NULL;
END;
$$;
CREATE TRIGGER clients_truncated AFTER TRUNCATE ON clients FOR EACH STATEMENT EXECUTE FUNCTION client_count_truncate();
`,
  },
];

/** The schema version this code writes and reads. */
export const LATEST_VERSION = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

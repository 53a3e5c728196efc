import type { AccessTokenRecord, Approver, AuditEvent, ClientRecord, CodeRecord, RefreshTokenRecord } from './records.js';

/**
 * The interfaces every storage backend implements (the JSON files in src/store/file/,
 * PostgreSQL in src/store/postgres/), and the records they keep (defined with their schemas
 * in records.ts). Times are epoch milliseconds. Credentials (codes, tokens, client secrets)
 * appear only as SHA-256 hashes: the raw values exist in the response to the client and
 * nowhere else. test/store/contract.ts is the suite every backend passes.
 */

export type { AccessTokenRecord, Approver, AuditEvent, ClientAuthMethod, ClientMetadata, ClientRecord, CodeRecord, KvEntry, RefreshTokenRecord } from './records.js';
export { CLIENT_AUTH_METHODS } from './records.js';

export interface StoreCounts {
  clients: number;
  codes: number;
  accessTokens: number;
  refreshTokens: number;
}

export interface ExpiredCounts {
  codes: number;
  accessTokens: number;
  refreshTokens: number;
  /** Another instance was running the cleanup at that moment, so this one did nothing (PostgreSQL). */
  skipped?: true;
}

/**
 * One owner approval as it stands: the live tokens that share a grant id. What the owner's
 * page lists and can revoke.
 */
export interface GrantSummary {
  grantId: string;
  clientId: string;
  scopes: string[];
  resource: string;
  /** When its oldest live token was issued: the approval, or the last refresh before it. */
  issuedAt: number;
  /** When the last of its tokens expires, unless refreshed before. */
  expiresAt: number;
  /** Live access tokens; usually one. */
  accessTokens: number;
  /** Whether a refresh token can still extend the grant. */
  refreshable: boolean;
  /** Who approved it, when sign-in by an identity provider was used. */
  approvedBy?: Approver;
}

export interface StoreHealth {
  ok: boolean;
  /** Why the last write failed (or why the database cannot be reached), without secrets; absent when healthy. */
  error?: string;
  /**
   * Why the last background compaction failed, if it did. Writes still succeed (the journal
   * holds them), so the store is ok, but the journal grows until compaction works again.
   */
  compactionError?: string;
  /** More about an unhealthy backend for the operator (PostgreSQL: the driver's message, never the URL). */
  detail?: string;
  /**
   * Data that could not be read and was kept aside (files: the names of the set-aside files in
   * the data directory). The store works, but the owner should look: reported until they act.
   */
  setAside?: string[];
}

export interface ClientQuery {
  /** Newest registration first; default oldest first. */
  newestFirst?: boolean;
  offset?: number;
  limit?: number;
  /**
   * Only clients the owner never approved: no `approvedAt` and never used (`lastUsedAt`; data
   * written before `approvedAt` existed has only that to show for an approval).
   */
  unapprovedOnly?: boolean;
}

export interface GrantQuery {
  /** Only grants approved by this subject (`approvedBy.subject`). */
  subject?: string;
  clientId?: string;
}

/**
 * Every method that changes state resolves only once the change is durable, and rejects
 * with a {@link StoreUnavailableError} when it is not (or when the backend cannot be reached).
 * Reads never return expired records.
 */
export interface Store {
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  putClient(client: ClientRecord): Promise<void>;
  /** Records a successful use without waiting for it: losing it in a crash costs nothing. */
  touchClient(clientId: string, at: number): void;
  /** Sets `approvedAt` to `at` if it is unset (the first approval is kept). Durable. */
  markClientApproved(clientId: string, at: number): Promise<void>;
  /** Deletes the client and everything issued to it. */
  deleteClient(clientId: string): Promise<boolean>;
  /** Deletes these clients and everything issued to them, in one durable step. Returns how many clients went. */
  deleteClients(clientIds: readonly string[]): Promise<number>;
  /**
   * Deletes the clients never approved (no `approvedAt`) registered before `registeredBefore`,
   * with their codes and tokens. A client that was evidently approved before `approvedAt`
   * existed (it has `lastUsedAt`, or codes or tokens) is never deleted.
   */
  deleteUnusedClients(registeredBefore: number): Promise<number>;
  /**
   * Registered clients in order of registration (`issuedAt`, then the order they were
   * stored), for the owner's page. Default: every client, oldest first.
   */
  listClients(query?: ClientQuery): Promise<ClientRecord[]>;
  /** How many clients are registered; cheap without a filter, for the OAUTH_MAX_CLIENTS check on every registration. */
  clientCount(query?: Pick<ClientQuery, 'unapprovedOnly'>): Promise<number>;

  putCode(code: CodeRecord): Promise<void>;
  /** Unexpired code by hash, consumed or not. */
  getCode(hash: string, now: number): Promise<CodeRecord | undefined>;
  /**
   * Atomically: if the unexpired code `hash` was not consumed yet, marks it consumed and
   * stores the tokens issued for it, in one durable step. Returns the record as it was
   * before, or undefined if unknown. A returned record with `consumedAt` set means somebody
   * else consumed it first and nothing was stored.
   */
  consumeCode(
    hash: string,
    now: number,
    issued: { access: AccessTokenRecord; refresh: RefreshTokenRecord | undefined },
  ): Promise<CodeRecord | undefined>;

  /** Stores the tokens of one issuance together. */
  putTokens(access: AccessTokenRecord, refresh: RefreshTokenRecord | undefined): Promise<void>;
  getAccessToken(hash: string, now: number): Promise<AccessTokenRecord | undefined>;
  getRefreshToken(hash: string, now: number): Promise<RefreshTokenRecord | undefined>;
  /**
   * Atomically: if the unexpired refresh token `hash` was not rotated yet, marks it rotated
   * (keeping it until `retainUntil`, so later reuse is recognised) and stores `successors`.
   * Returns the record as it was before, or undefined if unknown. A returned record with
   * `rotatedAt` set means it had been rotated already and nothing was stored.
   */
  rotateRefreshToken(
    hash: string,
    now: number,
    retainUntil: number,
    successors: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
  ): Promise<RefreshTokenRecord | undefined>;
  deleteAccessToken(hash: string): Promise<boolean>;
  /** Deletes every code and token of a grant. Returns how many records went. */
  revokeGrant(grantId: string): Promise<number>;
  /** Deletes every code and token whose `approvedBy.subject` is `subject`. Returns how many records went. */
  revokeGrantsBySubject(subject: string): Promise<number>;
  /**
   * Grants with at least one live token: an unexpired access token, or an unexpired refresh
   * token that was not rotated (rotated ones are kept only to recognise reuse). Oldest first.
   */
  listGrants(now: number, query?: GrantQuery): Promise<GrantSummary[]>;

  /** Deletes expired codes and tokens (and expired key-value entries, which it does not count). */
  deleteExpired(now: number): Promise<ExpiredCounts>;
  counts(now: number): Promise<StoreCounts>;
  /** Whether state changes can currently be made durable (retrying a failed write first). */
  health(): Promise<StoreHealth>;
  /** Waits for pending writes and releases resources. */
  close(): Promise<void>;
}

/**
 * Small values with an optional expiry, shared by every instance on the backend, durable.
 * For used consent forms (single use), sign-in transactions and replayed callbacks, the
 * owner's and people's page sessions, known devices and the PIN budgets (docs/storage.md
 * lists the namespaces). Expired entries never come back from
 * reads, and {@link Store.deleteExpired} removes them.
 */
export interface KeyValueStore {
  /** Stores the value unless a live entry exists; true if it stored. */
  putIfAbsent(namespace: string, key: string, value: string, expiresAt: number | null, now: number): Promise<boolean>;
  put(namespace: string, key: string, value: string, expiresAt: number | null): Promise<void>;
  get(namespace: string, key: string, now: number): Promise<string | undefined>;
  /** Atomically reads and deletes a live entry (single use). */
  take(namespace: string, key: string, now: number): Promise<string | undefined>;
  /** Deletes the entry, live or expired; true if there was one. */
  delete(namespace: string, key: string): Promise<boolean>;
  /** Live entries of a namespace, by key (small namespaces only, e.g. sessions for the owner's page). */
  list(namespace: string, now: number): Promise<{ key: string; value: string; expiresAt: number | null }[]>;
}

/** A fixed window's state: hits so far and when the window closes. */
export interface CounterWindow {
  count: number;
  resetAt: number;
}

/** Fixed-window counters (rate limits, PIN failure budgets). */
export interface CounterStore {
  /** +1 in the key's live window, opening a window of windowMs if none is live. */
  increment(key: string, windowMs: number, now: number): Promise<CounterWindow>;
  get(key: string, now: number): Promise<CounterWindow | undefined>;
  /** -1 in the key's live window (never below 0); nothing if none is live. */
  decrement(key: string, now: number): Promise<void>;
  /** Deletes every counter whose key starts with prefix; returns how many. */
  reset(prefix: string): Promise<number>;
}

export interface AuditQuery {
  /** From this time (inclusive). */
  since?: number;
  /** Up to this time (exclusive). */
  until?: number;
  subject?: string;
  clientId?: string;
  type?: string;
  /** Skip this many matching events first (paging, newest first). */
  offset?: number;
  limit: number;
}

/** The audit log: append-only, durable, one event per security-relevant action. */
export interface AuditStore {
  /** Resolves once the event is durable. */
  append(event: AuditEvent): Promise<void>;
  /** Matching events, newest first (by `at`). */
  list(query: AuditQuery): Promise<AuditEvent[]>;
  /** Deletes events older than `before`; returns how many went. The file backend deletes whole UTC days only. */
  prune(before: number): Promise<number>;
}

/** Everything a backend provides: what the daemon opens. */
export interface Backend {
  kind: 'files' | 'postgres';
  store: Store;
  kv: KeyValueStore;
  counters: CounterStore;
  audit: AuditStore;
  /** The key that signs consent forms, created on first use, shared by every instance. */
  consentKey(): Promise<Buffer>;
  health(): Promise<StoreHealth>;
  /** Waits for pending writes and releases everything (files, pool). */
  close(): Promise<void>;
}

/** What opening a backend found, for the startup line. */
export interface LoadReport {
  counts: StoreCounts;
  /** Files that could not be parsed and were moved aside, with where they went (files only). */
  setAside: { file: string; movedTo: string; reason: string }[];
  /** What the journal added to the snapshots, and what of it had to be dropped (files only; zeros for PostgreSQL). */
  journal: { files: number; records: number; tornRecords: number; corruptRecords: number };
  /** Schema migrations applied at this start (PostgreSQL only). */
  migrations?: { applied: number[]; version: number };
}

/** A state change could not be made durable; the request should be retried later. */
export class StoreUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`store unavailable: ${reason}`);
    this.name = 'StoreUnavailableError';
  }
}

/** Startup cannot go on: the message says which file (or database) and what to do. */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}

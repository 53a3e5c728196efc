import type { AccessTokenRecord, ClientRecord, CodeRecord, RefreshTokenRecord } from './records.js';

/**
 * The one interface every storage backend implements, and the records it keeps (defined
 * with their schemas in records.ts). Times are epoch milliseconds. Credentials (codes,
 * tokens, client secrets) appear only as SHA-256 hashes: the raw values exist in the
 * response to the client and nowhere else.
 */

export type { AccessTokenRecord, ClientMetadata, ClientRecord, CodeRecord, RefreshTokenRecord } from './records.js';

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
}

export interface StoreHealth {
  ok: boolean;
  /** Why the last write failed, without paths to secrets; absent when healthy. */
  error?: string;
  /**
   * Why the last background compaction failed, if it did. Writes still succeed (the journal
   * holds them), so the store is ok, but the journal grows until compaction works again.
   */
  compactionError?: string;
}

/**
 * Every method that changes state resolves only once the change is durable, and rejects
 * with a {@link StoreUnavailableError} when it is not. Reads never return expired records.
 */
export interface Store {
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  putClient(client: ClientRecord): Promise<void>;
  /** Records a successful use without waiting for disk: losing it in a crash costs nothing. */
  touchClient(clientId: string, at: number): void;
  /** Deletes the client and everything issued to it. */
  deleteClient(clientId: string): Promise<boolean>;
  /** Every registered client, oldest first. */
  listClients(): Promise<ClientRecord[]>;
  /** How many clients are registered; cheap, for the OAUTH_MAX_CLIENTS check on every registration. */
  clientCount(): Promise<number>;

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
  /**
   * Grants with at least one live token: an unexpired access token, or an unexpired refresh
   * token that was not rotated (rotated ones are kept only to recognise reuse). Oldest first.
   */
  listGrants(now: number): Promise<GrantSummary[]>;

  deleteExpired(now: number): Promise<ExpiredCounts>;
  counts(now: number): Promise<StoreCounts>;
  /** Whether state changes can currently be made durable (retrying a failed write first). */
  health(): Promise<StoreHealth>;
  /** Waits for pending writes and releases resources. */
  close(): Promise<void>;
}

/** What opening the store found, for the startup line. */
export interface LoadReport {
  counts: StoreCounts;
  /** Files that could not be parsed and were moved aside, with where they went. */
  setAside: { file: string; movedTo: string; reason: string }[];
  /** What the journal added to the snapshots, and what of it had to be dropped. */
  journal: { files: number; records: number; tornRecords: number; corruptRecords: number };
}

/** A state change could not be made durable; the request should be retried later. */
export class StoreUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`store unavailable: ${reason}`);
    this.name = 'StoreUnavailableError';
  }
}

/** Startup cannot go on: the message says which file and what to do. */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}

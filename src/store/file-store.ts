import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { nodeFsOps, writeFileAtomic, type FsOps } from './atomic-file.js';
import {
  StoreUnavailableError,
  type AccessTokenRecord,
  type ClientRecord,
  type CodeRecord,
  type ExpiredCounts,
  type GrantSummary,
  type RefreshTokenRecord,
  type Store,
  type StoreCounts,
  type StoreHealth,
} from './types.js';

/**
 * The JSON-file store. All records live in memory; every change is applied in memory in one
 * synchronous step (so check-and-set operations are atomic on Node's single thread), then
 * the changed collections are written with {@link writeFileAtomic}. Callers are answered
 * only once their change is on disk. Changes that arrive while a write is running are
 * written together in the next one (group commit). If a write fails, every change not yet
 * on disk is undone in memory and its callers get {@link StoreUnavailableError}: nothing is
 * acknowledged that is not on disk. The layout is described in docs/storage.md.
 */

export const SCHEMA_VERSION = 1;

/** The file of each collection, relative to the data directory. */
export const FILES = {
  clients: 'clients.json',
  codes: 'codes.json',
  accessTokens: 'tokens.json',
  refreshTokens: 'refresh_tokens.json',
} as const;

export type CollectionName = keyof typeof FILES;

const str = z.string();
const num = z.number();
const authMethod = z.enum(['none', 'client_secret_basic', 'client_secret_post']);

const clientSchema = z.object({
  clientId: str,
  clientSecretHash: str.optional(),
  issuedAt: num,
  lastUsedAt: num.optional(),
  metadata: z.looseObject({
    redirect_uris: z.array(str),
    token_endpoint_auth_method: authMethod,
    grant_types: z.array(str),
    response_types: z.array(str),
  }),
});

const codeSchema = z.object({
  hash: str,
  clientId: str,
  grantId: str,
  redirectUri: str,
  codeChallenge: str,
  scopes: z.array(str),
  resource: str,
  issuedAt: num,
  expiresAt: num,
  consumedAt: num.optional(),
});

const accessSchema = z.object({
  hash: str,
  clientId: str,
  grantId: str,
  scopes: z.array(str),
  resource: str,
  issuedAt: num,
  expiresAt: num,
});

const refreshSchema = accessSchema.extend({ rotatedAt: num.optional() });

const SCHEMAS: Record<CollectionName, z.ZodType> = {
  clients: clientSchema,
  codes: codeSchema,
  accessTokens: accessSchema,
  refreshTokens: refreshSchema,
};

interface Collections {
  clients: Map<string, ClientRecord>;
  codes: Map<string, CodeRecord>;
  accessTokens: Map<string, AccessTokenRecord>;
  refreshTokens: Map<string, RefreshTokenRecord>;
}

type Record_ = ClientRecord | CodeRecord | AccessTokenRecord | RefreshTokenRecord;

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface FileStoreOptions {
  dataDir: string;
  logger: Logger;
  fs?: FsOps;
}

export interface LoadReport {
  counts: StoreCounts;
  /** Files that could not be parsed and were moved aside, with where they went. */
  setAside: { file: string; movedTo: string; reason: string }[];
}

/** Startup cannot go on: the message says which file and what to do. */
export class StoreOpenError extends Error {
  override name = 'StoreOpenError';
}

/**
 * Reads one collection file: its envelope, schema version and every record. Shared with
 * `latchkey doctor` and `latchkey backup`, so they judge a file exactly as the daemon does.
 */
export function parseDataFile(
  name: CollectionName,
  text: string,
): { ok: true; records: Record_[] } | { ok: false; reason: string; newer: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not valid JSON (${(err as Error).message})`, newer: false };
  }
  const envelope = z.object({ version: z.number(), records: z.array(z.unknown()) }).safeParse(json);
  if (!envelope.success) return { ok: false, reason: 'not a Latchkey data file (no version/records)', newer: false };
  if (envelope.data.version > SCHEMA_VERSION) {
    return { ok: false, reason: `schema version ${envelope.data.version}`, newer: true };
  }
  if (envelope.data.version !== SCHEMA_VERSION) {
    return { ok: false, reason: `unknown schema version ${envelope.data.version}`, newer: false };
  }
  const records = z.array(SCHEMAS[name]).safeParse(envelope.data.records);
  if (!records.success) {
    return { ok: false, reason: `a record does not match the schema (${records.error.issues[0]?.message ?? ''})`, newer: false };
  }
  return { ok: true, records: records.data as Record_[] };
}

export class FileStore implements Store {
  private readonly data: Collections = {
    clients: new Map(),
    codes: new Map(),
    accessTokens: new Map(),
    refreshTokens: new Map(),
  };
  /**
   * grantId → keys of its codes and tokens, per collection, so revoking a grant touches only
   * its own records instead of scanning every token. Kept in step by {@link set}.
   */
  private readonly byGrant = new Map<string, Set<string>>();
  private dirty = new Set<CollectionName>();
  private undo: (() => void)[] = [];
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private lastError: string | undefined;

  private constructor(
    private readonly dir: string,
    private readonly fs: FsOps,
    private readonly logger: Logger,
  ) {}

  static async open(options: FileStoreOptions): Promise<{ store: FileStore; report: LoadReport }> {
    const store = new FileStore(path.resolve(options.dataDir), options.fs ?? nodeFsOps, options.logger);
    const report = await store.load();
    return { store, report };
  }

  // ---- loading -------------------------------------------------------------------------

  private async load(): Promise<LoadReport> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fsp.chmod(this.dir, 0o700).catch(() => undefined);
    await this.removeStaleTempFiles();
    const setAside: LoadReport['setAside'] = [];
    for (const name of Object.keys(FILES) as CollectionName[]) {
      const file = path.join(this.dir, FILES[name]);
      let text: string;
      try {
        text = await fsp.readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.dirty.add(name); // created empty at first start
          continue;
        }
        throw new StoreOpenError(
          `cannot read ${file}: ${(err as Error).message}. Check that the user running Latchkey owns ${this.dir}.`,
        );
      }
      const parsed = parseDataFile(name, text);
      if (parsed.ok) {
        for (const record of parsed.records) {
          const key = this.keyOf(name, record);
          this.mapOf(name).set(key, record);
          this.index(name, key, undefined, record);
        }
        continue;
      }
      if (parsed.newer) {
        throw new StoreOpenError(`${file} was written by a newer Latchkey (${parsed.reason}); upgrade Latchkey to read it.`);
      }
      // Never overwrite what we cannot read: move it aside byte for byte, start that collection empty.
      const movedTo = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await fsp.rename(file, movedTo);
      this.logger.error({ file, movedTo, reason: parsed.reason }, 'data file is corrupt; moved it aside and started that collection empty');
      setAside.push({ file, movedTo, reason: parsed.reason });
      this.dirty.add(name);
    }
    if (this.dirty.size > 0) await this.commit();
    return { counts: await this.counts(Date.now()), setAside };
  }

  /**
   * A crash between writing a temporary file and renaming it leaves the temporary file
   * behind. It never holds anything acknowledged (the rename is the commit), so it goes.
   */
  private async removeStaleTempFiles(): Promise<void> {
    const names = new Set<string>(Object.values(FILES));
    for (const entry of await fsp.readdir(this.dir)) {
      const match = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(entry);
      if (match?.[1] && names.has(match[1])) {
        await fsp.unlink(path.join(this.dir, entry)).catch(() => undefined);
        this.logger.info({ file: entry }, 'removed a temporary file left by an interrupted write');
      }
    }
  }

  private keyOf(name: CollectionName, record: Record_): string {
    return name === 'clients' ? (record as ClientRecord).clientId : (record as CodeRecord).hash;
  }

  private mapOf(name: CollectionName): Map<string, Record_> {
    return this.data[name] as Map<string, Record_>;
  }

  // ---- writing -------------------------------------------------------------------------

  /** Moves `key` in the grant index from the grant of `before` to the grant of `after`. */
  private index(name: CollectionName, key: string, before: Record_ | undefined, after: Record_ | undefined): void {
    if (name === 'clients') return;
    const grantOf = (r: Record_ | undefined): string | undefined => (r as CodeRecord | undefined)?.grantId;
    const entry = `${name}:${key}`;
    const from = grantOf(before);
    const to = grantOf(after);
    if (from === to) return;
    if (from !== undefined) {
      const keys = this.byGrant.get(from);
      keys?.delete(entry);
      if (keys?.size === 0) this.byGrant.delete(from);
    }
    if (to !== undefined) {
      const keys = this.byGrant.get(to) ?? new Set<string>();
      keys.add(entry);
      this.byGrant.set(to, keys);
    }
  }

  /** Applies a change in memory, remembering how to undo it if the write fails. */
  private set<K extends CollectionName>(name: K, key: string, value: Record_ | undefined): void {
    const map = this.mapOf(name);
    const previous = map.get(key);
    this.undo.push(() => {
      const current = map.get(key);
      if (previous) map.set(key, previous);
      else map.delete(key);
      this.index(name, key, current, previous);
    });
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    this.index(name, key, previous, value);
    this.dirty.add(name);
  }

  /** Resolves once every change made so far is on disk. */
  private commit(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.waiters.length > 0) {
        const waiters = this.waiters;
        const names = [...this.dirty];
        const undo = this.undo;
        this.waiters = [];
        this.dirty = new Set();
        this.undo = [];
        const payloads = names.map((name) => ({ name, text: this.serialize(name) }));
        try {
          for (const { name, text } of payloads) await writeFileAtomic(this.fs, path.join(this.dir, FILES[name]), text);
          if (this.lastError) this.logger.info('data directory is writable again');
          this.lastError = undefined;
          for (const w of waiters) w.resolve();
        } catch (err) {
          this.failBatch(err as NodeJS.ErrnoException, names, undo, waiters);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  /**
   * A write failed. Undo this batch and every change queued behind it (newest first, so
   * each undo restores exactly what it saw), fail their callers, and mark the files dirty
   * again: the next write rewrites them from the restored state, so a file the failed batch
   * did manage to replace cannot keep an unacknowledged change.
   */
  private failBatch(err: NodeJS.ErrnoException, names: CollectionName[], undo: (() => void)[], waiters: Waiter[]): void {
    const all = [...undo, ...this.undo];
    for (let i = all.length - 1; i >= 0; i--) all[i]?.();
    const queued = this.waiters;
    this.undo = [];
    this.waiters = [];
    for (const n of names) this.dirty.add(n);
    this.lastError = err.code ?? err.message;
    // `errno`, not `code`: the log redaction censors every `code` key (OAuth codes share the name).
    this.logger.error({ errno: err.code, reason: err.message }, 'could not write the data directory; changes were refused');
    const error = new StoreUnavailableError(this.lastError);
    for (const w of [...waiters, ...queued]) w.reject(error);
  }

  private serialize(name: CollectionName): string {
    return JSON.stringify({ version: SCHEMA_VERSION, records: [...this.mapOf(name).values()] });
  }

  // ---- clients -------------------------------------------------------------------------

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    return this.data.clients.get(clientId);
  }

  async putClient(client: ClientRecord): Promise<void> {
    this.set('clients', client.clientId, client);
    await this.commit();
  }

  touchClient(clientId: string, at: number): void {
    const client = this.data.clients.get(clientId);
    // At most one rewrite a minute per client: this is for the owner's overview, not security.
    if (!client || (client.lastUsedAt !== undefined && at - client.lastUsedAt < 60_000)) return;
    this.data.clients.set(clientId, { ...client, lastUsedAt: at });
    this.dirty.add('clients');
  }

  async deleteClient(clientId: string): Promise<boolean> {
    if (!this.data.clients.has(clientId)) return false;
    this.set('clients', clientId, undefined);
    for (const name of ['codes', 'accessTokens', 'refreshTokens'] as const) {
      for (const [key, record] of this.data[name]) if (record.clientId === clientId) this.set(name, key, undefined);
    }
    await this.commit();
    return true;
  }

  async clientCount(): Promise<number> {
    return this.data.clients.size;
  }

  async listClients(): Promise<ClientRecord[]> {
    return [...this.data.clients.values()].sort((a, b) => a.issuedAt - b.issuedAt);
  }

  // ---- codes ---------------------------------------------------------------------------

  async putCode(code: CodeRecord): Promise<void> {
    this.set('codes', code.hash, code);
    await this.commit();
  }

  async getCode(hash: string, now: number): Promise<CodeRecord | undefined> {
    const code = this.data.codes.get(hash);
    return code && code.expiresAt > now ? code : undefined;
  }

  async consumeCode(
    hash: string,
    now: number,
    issued: { access: AccessTokenRecord; refresh: RefreshTokenRecord | undefined },
  ): Promise<CodeRecord | undefined> {
    const code = this.data.codes.get(hash);
    if (!code || code.expiresAt <= now) return undefined;
    if (code.consumedAt !== undefined) return code;
    this.set('codes', hash, { ...code, consumedAt: now });
    this.set('accessTokens', issued.access.hash, issued.access);
    if (issued.refresh) this.set('refreshTokens', issued.refresh.hash, issued.refresh);
    await this.commit();
    return code;
  }

  // ---- tokens --------------------------------------------------------------------------

  async putTokens(access: AccessTokenRecord, refresh: RefreshTokenRecord | undefined): Promise<void> {
    this.set('accessTokens', access.hash, access);
    if (refresh) this.set('refreshTokens', refresh.hash, refresh);
    await this.commit();
  }

  async getAccessToken(hash: string, now: number): Promise<AccessTokenRecord | undefined> {
    const token = this.data.accessTokens.get(hash);
    return token && token.expiresAt > now ? token : undefined;
  }

  async getRefreshToken(hash: string, now: number): Promise<RefreshTokenRecord | undefined> {
    const token = this.data.refreshTokens.get(hash);
    return token && token.expiresAt > now ? token : undefined;
  }

  async rotateRefreshToken(
    hash: string,
    now: number,
    retainUntil: number,
    successors: { access: AccessTokenRecord; refresh: RefreshTokenRecord },
  ): Promise<RefreshTokenRecord | undefined> {
    const token = this.data.refreshTokens.get(hash);
    if (!token || token.expiresAt <= now) return undefined;
    if (token.rotatedAt !== undefined) return token;
    this.set('refreshTokens', hash, { ...token, rotatedAt: now, expiresAt: Math.min(token.expiresAt, retainUntil) });
    this.set('accessTokens', successors.access.hash, successors.access);
    this.set('refreshTokens', successors.refresh.hash, successors.refresh);
    await this.commit();
    return token;
  }

  async deleteAccessToken(hash: string): Promise<boolean> {
    if (!this.data.accessTokens.has(hash)) return false;
    this.set('accessTokens', hash, undefined);
    await this.commit();
    return true;
  }

  async revokeGrant(grantId: string): Promise<number> {
    const entries = [...(this.byGrant.get(grantId) ?? [])];
    for (const entry of entries) {
      const colon = entry.indexOf(':');
      this.set(entry.slice(0, colon) as CollectionName, entry.slice(colon + 1), undefined);
    }
    if (entries.length > 0) await this.commit();
    return entries.length;
  }

  async listGrants(now: number): Promise<GrantSummary[]> {
    const grants = new Map<string, GrantSummary>();
    const add = (token: AccessTokenRecord | RefreshTokenRecord, isAccess: boolean): void => {
      const grant = grants.get(token.grantId) ?? {
        grantId: token.grantId,
        clientId: token.clientId,
        scopes: token.scopes,
        resource: token.resource,
        issuedAt: token.issuedAt,
        expiresAt: token.expiresAt,
        accessTokens: 0,
        refreshable: false,
      };
      grant.issuedAt = Math.min(grant.issuedAt, token.issuedAt);
      grant.expiresAt = Math.max(grant.expiresAt, token.expiresAt);
      if (isAccess) grant.accessTokens++;
      else grant.refreshable = true;
      grants.set(token.grantId, grant);
    };
    for (const t of this.data.refreshTokens.values()) if (t.expiresAt > now && t.rotatedAt === undefined) add(t, false);
    for (const t of this.data.accessTokens.values()) if (t.expiresAt > now) add(t, true);
    return [...grants.values()].sort((a, b) => a.issuedAt - b.issuedAt);
  }

  // ---- housekeeping --------------------------------------------------------------------

  async deleteExpired(now: number): Promise<ExpiredCounts> {
    const counts: ExpiredCounts = { codes: 0, accessTokens: 0, refreshTokens: 0 };
    for (const name of ['codes', 'accessTokens', 'refreshTokens'] as const) {
      for (const [key, record] of this.data[name]) {
        if (record.expiresAt <= now) {
          this.set(name, key, undefined);
          counts[name]++;
        }
      }
    }
    if (counts.codes + counts.accessTokens + counts.refreshTokens > 0) await this.commit();
    return counts;
  }

  async counts(now: number): Promise<StoreCounts> {
    const live = (map: Map<string, { expiresAt: number }>): number => {
      let n = 0;
      for (const r of map.values()) if (r.expiresAt > now) n++;
      return n;
    };
    let refresh = 0;
    for (const r of this.data.refreshTokens.values()) if (r.expiresAt > now && r.rotatedAt === undefined) refresh++;
    let codes = 0;
    for (const r of this.data.codes.values()) if (r.expiresAt > now && r.consumedAt === undefined) codes++;
    return {
      clients: this.data.clients.size,
      codes,
      accessTokens: live(this.data.accessTokens),
      refreshTokens: refresh,
    };
  }

  async health(): Promise<StoreHealth> {
    // After a failed write, try again now: a fault that has cleared (disk space freed,
    // permissions fixed) heals the store without waiting for the next request.
    if (this.lastError !== undefined) await this.commit().catch(() => undefined);
    return this.lastError === undefined ? { ok: true } : { ok: false, error: this.lastError };
  }

  async close(): Promise<void> {
    if (this.dirty.size > 0) await this.commit().catch(() => undefined);
    await this.flushing;
  }
}

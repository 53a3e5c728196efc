import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { MetadataFetcher } from '../net/metadata-document-fetch.js';
import { MetadataFetchError } from '../net/metadata-document-fetch.js';
import type { ClientRecord, KeyValueStore, Store } from '../store/types.js';
import {
  clientFromMetadataDocument,
  documentCacheLifetime,
  isClientIdMetadataUrl,
  MetadataDocumentError,
} from './client-metadata-document.js';
import { invalidClient, temporarilyUnavailable } from './errors.js';

export type ClientLookup =
  | { kind: 'found'; client: ClientRecord }
  | { kind: 'unknown' }
  /** A metadata-document client whose document could not be used; the reason is for people. */
  | { kind: 'refused'; reason: string }
  /** Latchkey cannot fetch the document right now (its own limits): nothing is wrong with the client. */
  | { kind: 'busy'; reason: string };

export interface ClientResolverOptions {
  store: Pick<Store, 'getClient' | 'markClientApproved'>;
  /** Where approvals of metadata-document clients (never stored as clients) are remembered. */
  kv: Pick<KeyValueStore, 'get' | 'put'>;
  clock: Clock;
  logger: Pick<Logger, 'warn'>;
  /** Undefined when Client ID Metadata Documents are turned off. */
  fetchDocument: MetadataFetcher | undefined;
  maxCachedDocuments?: number;
}

interface CachedLookup {
  lookup: ClientLookup;
  until: number;
}

/**
 * Every fetched answer is reused at least this long: a refusal, a failure, and a document
 * served with no-store or max-age=0 alike. Without a floor, a stream of /authorize, /token or
 * /revoke requests naming a URL (which arrive before any credential is checked) would make
 * Latchkey fetch it again on every request, on the caller's behalf.
 */
export const REFUSAL_CACHE_MS = 60_000;
export const MIN_DOCUMENT_CACHE_MS = REFUSAL_CACHE_MS;

/**
 * How long a document that was good keeps serving when it cannot be fetched again (the host
 * down or slow, Latchkey's own budgets spent): its client keeps working through an outage or a
 * flood of strangers' URLs on the same host (HTTP's stale-if-error, RFC 5861 §4).
 */
export const STALE_IF_ERROR_MS = 24 * 3_600_000;

/**
 * Fetches per host name (any port) per minute. Distinct URLs on one host each miss the cache;
 * this budget keeps Latchkey from being turned against that host however many URLs a caller
 * invents.
 */
export const MAX_FETCHES_PER_HOST_PER_MINUTE = 10;

/** Fetches of documents per minute, all hosts together: many host names can point at one machine. */
export const MAX_FETCHES_PER_MINUTE = 60;

/**
 * Fetches of different URLs running at once. Each may take 5 s; without a cap, requests naming
 * many distinct URLs would turn Latchkey into a relay against other hosts and tie up the DNS
 * thread pool that file writes share.
 */
export const MAX_FETCHES_IN_FLIGHT = 8;

/** The key-value namespace of metadata-document clients the owner approved. */
const APPROVED_DOCUMENT_CLIENTS = 'approved-document-client';

/**
 * Finds the client behind a client_id: a registered client from the store, or, for an https
 * URL, the client described by its metadata document (fetched, checked, cached).
 */
export class ClientResolver {
  private readonly cache = new Map<string, CachedLookup>();
  /** The last good document of each URL, kept to serve through outages (see STALE_IF_ERROR_MS). */
  private readonly lastGood = new Map<string, { client: ClientRecord; until: number }>();
  private readonly inFlight = new Map<string, Promise<ClientLookup>>();
  /** Fetches per host name, and of all hosts (under ''), in the current minute. */
  private readonly budget = new Map<string, { count: number; until: number }>();
  private readonly maxCached: number;

  constructor(private readonly options: ClientResolverOptions) {
    this.maxCached = options.maxCachedDocuments ?? 1000;
  }

  async lookup(clientId: string): Promise<ClientLookup> {
    if (!this.options.fetchDocument || !isClientIdMetadataUrl(clientId)) {
      const client = await this.options.store.getClient(clientId);
      return client ? { kind: 'found', client } : { kind: 'unknown' };
    }
    const now = this.options.clock.now();
    const cached = this.cache.get(clientId);
    if (cached && cached.until > now) return cached.lookup;
    if (cached) this.cache.delete(clientId);
    const pending = this.inFlight.get(clientId);
    if (pending) return pending;
    const busy =
      this.inFlight.size >= MAX_FETCHES_IN_FLIGHT
        ? 'too many client metadata documents are being fetched right now'
        : !this.spendBudget(new URL(clientId).hostname, now)
          ? 'too many client metadata documents were fetched in the last minute'
          : undefined;
    if (busy !== undefined) return this.stale(clientId, now) ?? { kind: 'busy', reason: `${busy}; try again in a minute` };
    const request = this.fetch(clientId, this.options.fetchDocument).finally(() => this.inFlight.delete(clientId));
    this.inFlight.set(clientId, request);
    return request;
  }

  /**
   * Remembers that the owner approved this client: a registered client gets approvedAt; a
   * metadata-document client, which is never stored, is remembered by its URL, so that its
   * errors may go back to it automatically as a registered client's do.
   */
  async markApproved(clientId: string, at: number): Promise<void> {
    if (!isClientIdMetadataUrl(clientId)) return this.options.store.markClientApproved(clientId, at);
    await this.options.kv.put(APPROVED_DOCUMENT_CLIENTS, clientId, String(at), null);
    const cached = this.cache.get(clientId);
    if (cached?.lookup.kind === 'found') cached.lookup = { kind: 'found', client: { ...cached.lookup.client, approvedAt: at } };
  }

  /**
   * The shape client authentication needs: unknown is undefined, a refused document is
   * invalid_client (the client must fix its document), and Latchkey being busy is
   * temporarily_unavailable: never invalid_client, on which MCP clients forget their
   * registration and tokens.
   */
  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const found = await this.lookup(clientId);
    if (found.kind === 'refused') throw invalidClient(`The client metadata document at ${clientId.slice(0, 200)} cannot be used: ${found.reason}`);
    if (found.kind === 'busy') throw temporarilyUnavailable(`The client metadata document cannot be fetched right now: ${found.reason}`);
    return found.kind === 'found' ? found.client : undefined;
  }

  private stale(clientId: string, now: number): ClientLookup | undefined {
    const good = this.lastGood.get(clientId);
    return good && good.until > now ? { kind: 'found', client: good.client } : undefined;
  }

  /** Spends one fetch of the host's budget and of the global one; false if either is spent. */
  private spendBudget(hostname: string, now: number): boolean {
    for (const [key, entry] of this.budget) if (entry.until <= now) this.budget.delete(key);
    const host = this.budget.get(hostname) ?? { count: 0, until: now + 60_000 };
    const all = this.budget.get('') ?? { count: 0, until: now + 60_000 };
    if (host.count >= MAX_FETCHES_PER_HOST_PER_MINUTE || all.count >= MAX_FETCHES_PER_MINUTE) return false;
    host.count++;
    all.count++;
    this.budget.set(hostname, host);
    this.budget.set('', all);
    return true;
  }

  private async fetch(clientId: string, fetchDocument: MetadataFetcher): Promise<ClientLookup> {
    let lookup: ClientLookup;
    let lifetime: number;
    try {
      const fetched = await fetchDocument(new URL(clientId));
      const approvedAt = await this.options.kv.get(APPROVED_DOCUMENT_CLIENTS, clientId, this.options.clock.now());
      const client = { ...clientFromMetadataDocument(clientId, fetched.body, this.options.clock.now()), ...(approvedAt !== undefined ? { approvedAt: Number(approvedAt) } : {}) };
      lookup = { kind: 'found', client };
      lifetime = Math.max(MIN_DOCUMENT_CACHE_MS, documentCacheLifetime(fetched.cacheControl));
      this.lastGood.set(clientId, { client, until: this.options.clock.now() + Math.max(lifetime, STALE_IF_ERROR_MS) });
    } catch (err) {
      const stale = err instanceof MetadataFetchError && err.transient ? this.stale(clientId, this.options.clock.now()) : undefined;
      // A failure answered with the last good copy is an answer like any other: it is cached for
      // the floor too, or every lookup while the host is down would fetch it again.
      lifetime = REFUSAL_CACHE_MS;
      if (stale) {
        this.options.logger.warn({ clientId, reason: (err as Error).message }, 'client metadata document unreachable; serving the last good copy');
        lookup = stale;
      } else {
        // Anything but our own errors came from parsing a stranger's document: refuse the client
        // rather than answer 500, and keep the detail out of the response.
        const reason =
          err instanceof MetadataFetchError ? err.publicReason : err instanceof MetadataDocumentError ? err.message : 'the document could not be processed';
        if (err instanceof MetadataFetchError || !(err instanceof MetadataDocumentError)) {
          this.options.logger.warn({ clientId, reason: (err as Error).message }, 'client metadata document refused');
        }
        lookup = { kind: 'refused', reason };
        this.lastGood.delete(clientId);
      }
    }
    this.cache.set(clientId, { lookup, until: this.options.clock.now() + lifetime });
    // Oldest first: a Map iterates in insertion order.
    for (const key of this.cache.keys()) {
      if (this.cache.size <= this.maxCached) break;
      this.cache.delete(key);
    }
    for (const key of this.lastGood.keys()) {
      if (this.lastGood.size <= this.maxCached) break;
      this.lastGood.delete(key);
    }
    return lookup;
  }
}

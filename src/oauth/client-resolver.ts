import type { Clock } from '../clock.js';
import type { MetadataFetcher } from '../net/metadata-document-fetch.js';
import { MetadataFetchError } from '../net/metadata-document-fetch.js';
import type { ClientRecord, Store } from '../store/types.js';
import {
  clientFromMetadataDocument,
  documentCacheLifetime,
  isClientIdMetadataUrl,
  MetadataDocumentError,
} from './client-metadata-document.js';
import { invalidClient } from './errors.js';

export type ClientLookup =
  | { kind: 'found'; client: ClientRecord }
  | { kind: 'unknown' }
  /** A metadata-document client whose document could not be used; the reason is for people. */
  | { kind: 'refused'; reason: string };

export interface ClientResolverOptions {
  store: Pick<Store, 'getClient'>;
  clock: Clock;
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
 * Fetches per host per minute. Distinct URLs on one host each miss the cache; this budget
 * keeps Latchkey from being turned against that host however many URLs a caller invents.
 */
export const MAX_FETCHES_PER_HOST_PER_MINUTE = 10;

/**
 * Fetches of different URLs running at once. Each may take 5 s; without a cap, requests naming
 * many distinct URLs would turn Latchkey into a relay against other hosts and tie up the DNS
 * thread pool that file writes share.
 */
export const MAX_FETCHES_IN_FLIGHT = 8;

/**
 * Finds the client behind a client_id: a registered client from the store, or, for an https
 * URL, the client described by its metadata document (fetched, checked, cached).
 */
export class ClientResolver {
  private readonly cache = new Map<string, CachedLookup>();
  private readonly inFlight = new Map<string, Promise<ClientLookup>>();
  /** Fetches per host in the current minute. */
  private readonly hostBudget = new Map<string, { count: number; until: number }>();
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
    if (this.inFlight.size >= MAX_FETCHES_IN_FLIGHT) {
      return { kind: 'refused', reason: 'too many client metadata documents are being fetched right now; try again in a moment' };
    }
    if (!this.spendHostBudget(new URL(clientId).host, now)) {
      return { kind: 'refused', reason: 'too many client metadata documents were fetched from that host in the last minute; try again in a minute' };
    }
    const request = this.fetch(clientId, this.options.fetchDocument).finally(() => this.inFlight.delete(clientId));
    this.inFlight.set(clientId, request);
    return request;
  }

  /** The shape client authentication needs: unknown is undefined, a refused document is invalid_client. */
  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const found = await this.lookup(clientId);
    if (found.kind === 'refused') throw invalidClient(`The client metadata document at ${clientId.slice(0, 200)} cannot be used: ${found.reason}`);
    return found.kind === 'found' ? found.client : undefined;
  }

  private spendHostBudget(host: string, now: number): boolean {
    for (const [key, entry] of this.hostBudget) if (entry.until <= now) this.hostBudget.delete(key);
    const entry = this.hostBudget.get(host) ?? { count: 0, until: now + 60_000 };
    if (entry.count >= MAX_FETCHES_PER_HOST_PER_MINUTE) return false;
    entry.count++;
    this.hostBudget.set(host, entry);
    return true;
  }

  private async fetch(clientId: string, fetchDocument: MetadataFetcher): Promise<ClientLookup> {
    let lookup: ClientLookup;
    let lifetime: number;
    try {
      const fetched = await fetchDocument(new URL(clientId));
      lookup = { kind: 'found', client: clientFromMetadataDocument(clientId, fetched.body, this.options.clock.now()) };
      lifetime = Math.max(MIN_DOCUMENT_CACHE_MS, documentCacheLifetime(fetched.cacheControl));
    } catch (err) {
      // Anything but our own errors came from parsing a stranger's document: refuse the client
      // rather than answer 500, and keep the detail out of the response.
      const reason =
        err instanceof MetadataFetchError || err instanceof MetadataDocumentError ? err.message : 'the document could not be processed';
      lookup = { kind: 'refused', reason };
      lifetime = REFUSAL_CACHE_MS;
    }
    this.cache.set(clientId, { lookup, until: this.options.clock.now() + lifetime });
    // Oldest first: a Map iterates in insertion order.
    for (const key of this.cache.keys()) {
      if (this.cache.size <= this.maxCached) break;
      this.cache.delete(key);
    }
    return lookup;
  }
}

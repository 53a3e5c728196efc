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

interface CachedDocument {
  client: ClientRecord;
  until: number;
}

/**
 * Finds the client behind a client_id: a registered client from the store, or, for an https
 * URL, the client described by its metadata document (fetched, checked, cached).
 */
export class ClientResolver {
  private readonly cache = new Map<string, CachedDocument>();
  private readonly inFlight = new Map<string, Promise<ClientLookup>>();
  private readonly maxCached: number;

  constructor(private readonly options: ClientResolverOptions) {
    this.maxCached = options.maxCachedDocuments ?? 1000;
  }

  get metadataDocumentsEnabled(): boolean {
    return this.options.fetchDocument !== undefined;
  }

  async lookup(clientId: string): Promise<ClientLookup> {
    if (!this.options.fetchDocument || !isClientIdMetadataUrl(clientId)) {
      const client = await this.options.store.getClient(clientId);
      return client ? { kind: 'found', client } : { kind: 'unknown' };
    }
    const now = this.options.clock.now();
    const cached = this.cache.get(clientId);
    if (cached && cached.until > now) return { kind: 'found', client: cached.client };
    if (cached) this.cache.delete(clientId);
    const pending = this.inFlight.get(clientId);
    if (pending) return pending;
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

  private async fetch(clientId: string, fetchDocument: MetadataFetcher): Promise<ClientLookup> {
    let client: ClientRecord;
    let lifetime: number;
    try {
      const fetched = await fetchDocument(new URL(clientId));
      client = clientFromMetadataDocument(clientId, fetched.body, this.options.clock.now());
      lifetime = documentCacheLifetime(fetched.cacheControl);
    } catch (err) {
      if (err instanceof MetadataFetchError || err instanceof MetadataDocumentError) return { kind: 'refused', reason: err.message };
      // Anything else came from parsing a stranger's document: refuse the client rather than
      // answer 500, and keep the detail out of the response.
      return { kind: 'refused', reason: 'the document could not be processed' };
    }
    if (lifetime > 0) {
      this.cache.set(clientId, { client, until: this.options.clock.now() + lifetime });
      // Oldest first: a Map iterates in insertion order.
      for (const key of this.cache.keys()) {
        if (this.cache.size <= this.maxCached) break;
        this.cache.delete(key);
      }
    }
    return { kind: 'found', client };
  }
}

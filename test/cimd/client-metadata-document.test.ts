import {
  clientFromMetadataDocument,
  documentCacheLifetime,
  isClientIdMetadataUrl,
  MAX_DOCUMENT_CACHE_MS,
} from '../../src/oauth/client-metadata-document.js';
import { ClientResolver, MAX_FETCHES_IN_FLIGHT, MAX_FETCHES_PER_HOST_PER_MINUTE, MIN_DOCUMENT_CACHE_MS, REFUSAL_CACHE_MS } from '../../src/oauth/client-resolver.js';
import { MetadataFetchError, type FetchedDocument } from '../../src/net/metadata-document-fetch.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { silentLogger } from '../helpers/unit-context.js';

const URL_ID = 'https://app.example.com/oauth/client.json';
const doc = (overrides: Record<string, unknown> = {}) => ({ client_id: URL_ID, redirect_uris: ['https://app.example.com/cb'], ...overrides });

describe('client_id as a metadata document URL', () => {
  it.each([
    [URL_ID, true],
    ['https://app.example.com/', false],
    ['https://app.example.com', false],
    ['http://app.example.com/client.json', false],
    ['https://user:pw@app.example.com/client.json', false],
    ['https://app.example.com/client.json#x', false],
    ['https://app.example.com/a/../client.json', false],
    ['https://APP.example.com/client.json', false],
    ['kZ3m_random-dcr-id', false],
  ])('%s → %s', (id, expected) => {
    expect(isClientIdMetadataUrl(id)).toBe(expected);
  });
});

describe('clientFromMetadataDocument', () => {
  it('builds a public client with defaults', () => {
    expect(clientFromMetadataDocument(URL_ID, doc({ client_name: 'App' }), 5)).toEqual({
      clientId: URL_ID,
      issuedAt: 5,
      metadata: {
        redirect_uris: ['https://app.example.com/cb'],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        client_name: 'App',
      },
    });
  });

  it.each([
    ['a client_id that is not the URL', doc({ client_id: 'https://other.example.com/client.json' }), 'is not the URL'],
    ['a client_secret', doc({ client_secret: 's' }), 'client_secret'],
    ['no redirect URIs', doc({ redirect_uris: [] }), 'redirect_uris'],
    ['a javascript: redirect URI', doc({ redirect_uris: ['javascript:alert(1)'] }), 'forbidden scheme'],
    ['private_key_jwt', doc({ token_endpoint_auth_method: 'private_key_jwt' }), 'only "none"'],
    ['an implicit grant', doc({ grant_types: ['implicit'] }), 'grant_types'],
    ['an array', [], 'not a JSON object'],
  ])('refuses %s', (_name, body, message) => {
    expect(() => clientFromMetadataDocument(URL_ID, body, 0)).toThrow(message);
  });
});

describe('documentCacheLifetime (RFC 9111 §5.2.2)', () => {
  it('follows max-age, capped at 24 h; no-store and no-cache mean no reuse', () => {
    expect(documentCacheLifetime('public, max-age=600')).toBe(600_000);
    expect(documentCacheLifetime('max-age=31536000')).toBe(MAX_DOCUMENT_CACHE_MS);
    expect(documentCacheLifetime('no-store')).toBe(0);
    expect(documentCacheLifetime('max-age=600, no-cache')).toBe(0);
  });
});

describe('ClientResolver', () => {
  function setup(answer: (url: URL) => Promise<FetchedDocument>, maxCachedDocuments = 1000) {
    const clock = new FakeClock(1_000);
    let fetches = 0;
    const registered = clientFromMetadataDocument(URL_ID, doc(), 0);
    const resolver = new ClientResolver({
      store: { getClient: async (id) => (id === 'registered' ? { ...registered, clientId: id } : undefined), markClientApproved: async () => undefined },
      kv: { get: async () => undefined, put: async () => undefined },
      clock,
      logger: silentLogger(),
      fetchDocument: (url) => {
        fetches++;
        return answer(url);
      },
      maxCachedDocuments,
    });
    return { resolver, clock, fetches: () => fetches };
  }

  it('looks registered client_ids up in the store and never fetches them', async () => {
    const { resolver, fetches } = setup(async () => ({ body: doc() }));
    expect((await resolver.lookup('registered')).kind).toBe('found');
    expect((await resolver.lookup('unknown')).kind).toBe('unknown');
    expect(fetches()).toBe(0);
  });

  it('reuses a document for its cache lifetime, then fetches again', async () => {
    const { resolver, clock, fetches } = setup(async () => ({ body: doc(), cacheControl: 'max-age=60' }));
    await resolver.lookup(URL_ID);
    await resolver.lookup(URL_ID);
    expect(fetches()).toBe(1);
    clock.advance(60_000);
    await resolver.lookup(URL_ID);
    expect(fetches()).toBe(2);
  });

  it('keeps at most the configured number of documents', async () => {
    const { resolver, fetches } = setup(async (url) => ({ body: doc({ client_id: url.href }) }), 1);
    await resolver.lookup(URL_ID);
    expect((await resolver.lookup('https://app.example.com/other.json')).kind).toBe('found');
    await resolver.lookup(URL_ID);
    expect(fetches()).toBe(3);
  });

  it('turns fetch failures into a refusal, and into invalid_client for client authentication', async () => {
    const { resolver } = setup(async () => {
      throw new MetadataFetchError('timeout', 'the document did not arrive within 5 s');
    });
    expect(await resolver.lookup(URL_ID)).toEqual({ kind: 'refused', reason: 'the document could not be fetched' });
    await expect(resolver.getClient(URL_ID)).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it('refuses, never throws, a document whose client_id is an object with a broken toString', async () => {
    const hostile = { client_id: { toString: 1 }, redirect_uris: ['https://app.example.com/cb'] };
    expect(() => clientFromMetadataDocument(URL_ID, hostile, 0)).toThrow('of type object');
    const { resolver } = setup(async () => ({ body: hostile }));
    expect((await resolver.lookup(URL_ID)).kind).toBe('refused');
    await expect(resolver.getClient(URL_ID)).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it('remembers a refusal for a minute instead of fetching a bad URL on every request', async () => {
    const { resolver, clock, fetches } = setup(async () => {
      throw new MetadataFetchError('status', 'the document answered HTTP 404');
    });
    expect((await resolver.lookup(URL_ID)).kind).toBe('refused');
    expect((await resolver.lookup(URL_ID)).kind).toBe('refused');
    expect(fetches()).toBe(1);
    clock.advance(REFUSAL_CACHE_MS);
    await resolver.lookup(URL_ID);
    expect(fetches()).toBe(2);
  });

  it.each(['no-store', 'no-cache', 'max-age=0'])('reuses a document served with %s for a minute all the same', async (cacheControl) => {
    const { resolver, clock, fetches } = setup(async () => ({ body: doc(), cacheControl }));
    for (let i = 0; i < 5; i++) expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    expect(fetches()).toBe(1);
    clock.advance(MIN_DOCUMENT_CACHE_MS);
    await resolver.lookup(URL_ID);
    expect(fetches()).toBe(2);
  });

  it(`fetches at most ${MAX_FETCHES_PER_HOST_PER_MINUTE} documents a minute from one host, however many URLs are named`, async () => {
    const { resolver, clock, fetches } = setup(async (url) => ({ body: doc({ client_id: url.href }) }));
    const kinds: string[] = [];
    for (let i = 0; i < MAX_FETCHES_PER_HOST_PER_MINUTE + 5; i++) kinds.push((await resolver.lookup(`https://app.example.com/c${i}.json`)).kind);
    expect(fetches()).toBe(MAX_FETCHES_PER_HOST_PER_MINUTE);
    expect(kinds.filter((k) => k === 'busy')).toHaveLength(5);
    // Another host has its own budget, and the budget comes back after a minute.
    expect((await resolver.lookup('https://other.example.net/c.json')).kind).toBe('found');
    clock.advance(60_000);
    expect((await resolver.lookup('https://app.example.com/late.json')).kind).toBe('found');
  });

  it('a stranger spending a host\'s budget never costs a known client its connection: its last good document serves, and busy is never invalid_client', async () => {
    const { resolver, clock, fetches } = setup(async (url) => ({ body: doc({ client_id: url.href }), cacheControl: 'max-age=0' }));
    expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    clock.advance(MIN_DOCUMENT_CACHE_MS + 1000);
    // The attacker names junk URLs on the same host name, any port.
    for (let i = 0; i < MAX_FETCHES_PER_HOST_PER_MINUTE; i++) await resolver.lookup(`https://app.example.com:${8000 + i}/junk${i}.json`);
    const before = fetches();
    expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    expect(await resolver.getClient(URL_ID)).toMatchObject({ clientId: URL_ID });
    expect(fetches()).toBe(before);
    // A client never seen before gets 503 temporarily_unavailable at /token, not invalid_client.
    await expect(resolver.getClient('https://app.example.com/new.json')).rejects.toMatchObject({ error: 'temporarily_unavailable', status: 503 });
  });

  it('serves the last good document while its host is down or failing, but not one it withdrew', async () => {
    let answer: () => Promise<FetchedDocument> = async () => ({ body: doc(), cacheControl: 'max-age=60' });
    const { resolver, clock } = setup(() => answer());
    expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    for (const failure of [new MetadataFetchError('timeout', 'slow'), new MetadataFetchError('network', 'refused'), new MetadataFetchError('status', 'HTTP 503', 503)]) {
      answer = async () => {
        throw failure;
      };
      clock.advance(61_000);
      expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    }
    answer = async () => {
      throw new MetadataFetchError('status', 'the document URL answered with HTTP 404', 404);
    };
    clock.advance(61_000);
    expect(await resolver.lookup(URL_ID)).toEqual({ kind: 'refused', reason: 'the document URL answered with HTTP 404' });
  });

  it('while the host is down, fetches it once a minute, not on every lookup: the last good copy served in its place is cached for the floor too', async () => {
    let answer: () => Promise<FetchedDocument> = async () => ({ body: doc(), cacheControl: 'max-age=60' });
    const { resolver, clock, fetches } = setup(() => answer());
    expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    answer = async () => {
      throw new MetadataFetchError('network', 'connection refused');
    };
    clock.advance(61_000);
    for (let i = 0; i < MAX_FETCHES_PER_HOST_PER_MINUTE + 5; i++) {
      expect((await resolver.lookup(URL_ID)).kind).toBe('found');
      expect(await resolver.getClient(URL_ID)).toMatchObject({ clientId: URL_ID });
    }
    expect(fetches()).toBe(2);
    clock.advance(REFUSAL_CACHE_MS);
    expect((await resolver.lookup(URL_ID)).kind).toBe('found');
    expect(fetches()).toBe(3);
  });

  it('tells a stranger nothing about hosts it cannot reach: every transport failure reads the same', async () => {
    for (const failure of [new MetadataFetchError('dns', 'the host x could not be resolved'), new MetadataFetchError('network', 'the TLS certificate of x is not trusted (E)'), new MetadataFetchError('timeout', 'no answer')]) {
      const { resolver } = setup(async () => {
        throw failure;
      });
      expect(await resolver.lookup(URL_ID)).toEqual({ kind: 'refused', reason: 'the document could not be fetched' });
    }
  });

  it(`fetches at most ${MAX_FETCHES_IN_FLIGHT} different documents at once and refuses the rest`, async () => {
    const release: (() => void)[] = [];
    const { resolver, fetches } = setup(
      (url) => new Promise<FetchedDocument>((resolve) => release.push(() => resolve({ body: doc({ client_id: url.href }) }))),
    );
    const ids = Array.from({ length: MAX_FETCHES_IN_FLIGHT + 2 }, (_, i) => `https://app${i}.example.com/client.json`);
    const lookups = ids.map((id) => resolver.lookup(id));
    expect(fetches()).toBe(MAX_FETCHES_IN_FLIGHT);
    for (const r of release) r();
    const kinds = (await Promise.all(lookups)).map((l) => l.kind);
    expect(kinds.filter((k) => k === 'found')).toHaveLength(MAX_FETCHES_IN_FLIGHT);
    expect(kinds.filter((k) => k === 'busy')).toHaveLength(2);
  });
});

describe('ClientResolver approvals of metadata-document clients', () => {
  it('are remembered by URL in the backend, so the client is trusted like a registered one after a restart', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { openBackend } = await import('../../src/store/open-backend.js');
    const { cryptoRandom } = await import('../../src/crypto/secrets.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'latchkey-cimd-approved-'));
    const open = async () => (await openBackend({ dataDir: dir, logger: silentLogger(), random: cryptoRandom })).backend;
    const resolverOn = (backend: Awaited<ReturnType<typeof open>>) =>
      new ClientResolver({ store: backend.store, kv: backend.kv, clock: new FakeClock(1_000), logger: silentLogger(), fetchDocument: async () => ({ body: doc() }) });
    let backend = await open();
    try {
      const first = await resolverOn(backend).lookup(URL_ID);
      expect(first.kind === 'found' && first.client.approvedAt).toBe(undefined);
      await resolverOn(backend).markApproved(URL_ID, 5_000);
      await backend.close();
      backend = await open();
      const again = await resolverOn(backend).lookup(URL_ID);
      expect(again.kind === 'found' && again.client.approvedAt).toBe(5_000);
    } finally {
      await backend.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

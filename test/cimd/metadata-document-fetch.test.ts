import { createMetadataFetcher, MetadataFetchError } from '../../src/net/metadata-document-fetch.js';
import { isPublicAddress } from '../../src/net/address-policy.js';
import { json, startHttpsFixture, type HttpsFixture } from './https-fixture.js';

let fixture: HttpsFixture;
const hanging: { end: () => void }[] = [];

beforeAll(async () => {
  fixture = await startHttpsFixture({
    '/ok.json': json({ hello: 'world' }, { 'cache-control': 'max-age=60' }),
    '/redirect.json': (_req, res) => res.writeHead(302, { location: '/ok.json' }).end(),
    '/big.json': json({ padding: 'x'.repeat(6000) }),
    '/chunked-big.json': (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"padding":"${'x'.repeat(3000)}`);
      res.end(`${'y'.repeat(3000)}"}`);
    },
    '/bad.json': (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{not json'),
    '/missing.json': (_req, res) => res.writeHead(404).end(),
    '/slow.json': (_req, res) => hanging.push({ end: () => res.end() }),
  });
});

afterAll(async () => {
  for (const h of hanging) h.end();
  await fixture.close();
});

const trusting = (overrides: Partial<Parameters<typeof createMetadataFetcher>[0]> = {}) =>
  createMetadataFetcher({ ca: fixture.caPem, allowPrivateAddresses: true, timeoutMs: 5000, maxBytes: 5120, ...overrides });

async function reason(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof MetadataFetchError) return err.reason;
    throw err;
  }
  throw new Error('expected the fetch to fail');
}

describe('fetching a client metadata document', () => {
  it('fetches JSON over https from a certificate trusted through configuration', async () => {
    await expect(trusting()(new URL(fixture.url('/ok.json')))).resolves.toEqual({ body: { hello: 'world' }, cacheControl: 'max-age=60' });
  });

  it('does not trust the self-signed certificate without the configured CA', async () => {
    const fetcher = createMetadataFetcher({ allowPrivateAddresses: true, timeoutMs: 5000, maxBytes: 5120 });
    await expect(fetcher(new URL(fixture.url('/ok.json')))).rejects.toThrow('not trusted');
  });

  it('refuses loopback and private addresses unless the test-only setting allows them', async () => {
    const strict = trusting({ allowPrivateAddresses: false });
    expect(await reason(strict(new URL(fixture.url('/ok.json'))))).toBe('private-address');
    expect(await reason(strict(new URL(`https://127.0.0.1:${fixture.port}/ok.json`)))).toBe('private-address');
    expect(await reason(strict(new URL('https://[::1]/ok.json')))).toBe('private-address');
  });

  it('refuses plain http', async () => {
    expect(await reason(trusting()(new URL(`http://localhost:${fixture.port}/ok.json`)))).toBe('not-https');
  });

  it('does not follow redirects', async () => {
    expect(await reason(trusting()(new URL(fixture.url('/redirect.json'))))).toBe('redirect');
  });

  it('refuses documents over the size limit, declared or streamed', async () => {
    expect(await reason(trusting()(new URL(fixture.url('/big.json'))))).toBe('too-large');
    expect(await reason(trusting()(new URL(fixture.url('/chunked-big.json'))))).toBe('too-large');
  });

  it('refuses a body that is not JSON, and a non-200 answer', async () => {
    expect(await reason(trusting()(new URL(fixture.url('/bad.json'))))).toBe('bad-json');
    expect(await reason(trusting()(new URL(fixture.url('/missing.json'))))).toBe('status');
  });

  it('gives up when the server does not answer in time', async () => {
    expect(await reason(trusting({ timeoutMs: 200 })(new URL(fixture.url('/slow.json'))))).toBe('timeout');
  });
});

describe('isPublicAddress', () => {
  it.each([
    ['127.0.0.1', false],
    ['10.1.2.3', false],
    ['172.16.0.1', false],
    ['192.168.1.1', false],
    ['169.254.169.254', false],
    ['100.64.0.1', false],
    ['0.0.0.0', false],
    ['::1', false],
    ['fe80::1', false],
    ['fd00::1', false],
    ['::ffff:127.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['not-an-ip', false],
    ['::7f00:1', false],
    ['2002:7f00:1::1', false],
    ['2001:0:4136:e378::1', false],
    ['2001:db8::1', false],
    ['fec0::1', false],
    ['64:ff9b::7f00:1', false],
    ['64:ff9b:1::a00:1', false],
    ['ff02::1', false],
    ['2::1', false],
    ['20::1', false],
    ['200::1', false],
    ['3fff::1', true],
    ['4000::1', false],
    ['192.88.99.1', false],
    ['2a00:1450:4001::1', true],
    ['93.184.216.34', true],
    ['2606:4700::1111', true],
    ['::ffff:93.184.216.34', true],
  ])('%s → %s', (address, expected) => {
    expect(isPublicAddress(address)).toBe(expected);
  });
});

import { authenticateClient, InvalidClientBasicError, parseBasicAuth } from '../../src/oauth/client-auth.js';
import { OAuthError } from '../../src/oauth/errors.js';
import { hashSecret } from '../../src/crypto/secrets.js';
import type { ClientRecord } from '../../src/store/types.js';
import { clientRecord, makeContext, type TestContext } from '../helpers/unit-context.js';

const basic = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

function parseError(header: string): OAuthError {
  try {
    parseBasicAuth(header);
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  throw new Error('expected parseBasicAuth to throw');
}

describe('parseBasicAuth (RFC 6749 §2.3.1)', () => {
  it('returns undefined without a header or for another scheme', () => {
    expect(parseBasicAuth(undefined)).toBeUndefined();
    expect(parseBasicAuth('')).toBeUndefined();
    expect(parseBasicAuth('Bearer abc.def')).toBeUndefined();
    expect(parseBasicAuth('Basically abc')).toBeUndefined();
  });

  it('parses id and secret', () => {
    expect(parseBasicAuth(basic('my-client', 's3cret'))).toEqual({ clientId: 'my-client', clientSecret: 's3cret' });
  });

  it('accepts the scheme name in any case and surrounding whitespace', () => {
    const encoded = Buffer.from('a:b').toString('base64');
    expect(parseBasicAuth(`basic ${encoded}`)).toEqual({ clientId: 'a', clientSecret: 'b' });
    expect(parseBasicAuth(`BASIC   ${encoded}  `)).toEqual({ clientId: 'a', clientSecret: 'b' });
  });

  it('form-urldecodes both parts, including colons, plus and percent signs', () => {
    const id = 'client:with:colons';
    const secret = 'p@ss word+%/:é';
    expect(parseBasicAuth(basic(id, secret))).toEqual({ clientId: id, clientSecret: secret });
    // "+" in the encoded form means a space (application/x-www-form-urlencoded).
    const plus = `Basic ${Buffer.from('a+b:c+d').toString('base64')}`;
    expect(parseBasicAuth(plus)).toEqual({ clientId: 'a b', clientSecret: 'c d' });
  });

  it('splits at the first colon, which an encoded id cannot contain', () => {
    const raw = `Basic ${Buffer.from('id:secret:with:colons').toString('base64')}`;
    expect(parseBasicAuth(raw)).toEqual({ clientId: 'id', clientSecret: 'secret:with:colons' });
  });

  it('allows an empty secret', () => {
    expect(parseBasicAuth(`Basic ${Buffer.from('id:').toString('base64')}`)).toEqual({ clientId: 'id', clientSecret: '' });
  });

  it.each([
    ['no colon', `Basic ${Buffer.from('justanid').toString('base64')}`],
    ['empty credentials', 'Basic '],
    ['bare scheme', 'Basic'],
    ['invalid base64 characters', 'Basic !!!notbase64!!!'],
    ['two tokens', 'Basic YTpi YTpi'],
    ['bad percent-encoding', `Basic ${Buffer.from('id:%zz').toString('base64')}`],
    ['truncated percent-encoding', `Basic ${Buffer.from('id%:secret').toString('base64')}`],
  ])('refuses a malformed header (%s) with invalid_client 401 and a Basic challenge', (_name, header) => {
    const err = parseError(header);
    expect(err).toBeInstanceOf(InvalidClientBasicError);
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
  });
});

describe('authenticateClient', () => {
  let t: TestContext;
  let publicClient: ClientRecord;
  let basicClient: ClientRecord;
  let postClient: ClientRecord;
  const SECRET = 'the-confidential-secret-value-0123456789';

  beforeAll(async () => {
    t = await makeContext();
    publicClient = clientRecord();
    basicClient = clientRecord({ clientSecretHash: hashSecret(SECRET) }, { token_endpoint_auth_method: 'client_secret_basic' });
    postClient = clientRecord({ clientSecretHash: hashSecret(SECRET) }, { token_endpoint_auth_method: 'client_secret_post' });
    for (const c of [publicClient, basicClient, postClient]) await t.store.putClient(c);
  });

  afterAll(async () => {
    await t.close();
  });

  async function failure(creds: Parameters<typeof authenticateClient>[1]): Promise<OAuthError> {
    try {
      await authenticateClient(t.store, creds);
    } catch (err) {
      if (err instanceof OAuthError) return err;
      throw err;
    }
    throw new Error('expected authentication to fail');
  }

  it('authenticates a public client by client_id alone', async () => {
    await expect(authenticateClient(t.store, { bodyClientId: publicClient.clientId })).resolves.toMatchObject({
      clientId: publicClient.clientId,
    });
  });

  it('refuses a public client that sends a secret', async () => {
    const err = await failure({ bodyClientId: publicClient.clientId, bodyClientSecret: 'anything' });
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
  });

  it('authenticates a confidential client via Basic', async () => {
    const creds = { basic: parseBasicAuth(basic(basicClient.clientId, SECRET)) };
    await expect(authenticateClient(t.store, creds)).resolves.toMatchObject({ clientId: basicClient.clientId });
  });

  it('authenticates a confidential client via the body', async () => {
    await expect(
      authenticateClient(t.store, { bodyClientId: postClient.clientId, bodyClientSecret: SECRET }),
    ).resolves.toMatchObject({ clientId: postClient.clientId });
  });

  it('accepts Basic with a matching client_id repeated in the body', async () => {
    const creds = { basic: { clientId: basicClient.clientId, clientSecret: SECRET }, bodyClientId: basicClient.clientId };
    await expect(authenticateClient(t.store, creds)).resolves.toMatchObject({ clientId: basicClient.clientId });
  });

  it('refuses Basic with a different client_id in the body', async () => {
    const err = await failure({ basic: { clientId: basicClient.clientId, clientSecret: SECRET }, bodyClientId: postClient.clientId });
    expect(err).toBeInstanceOf(InvalidClientBasicError);
    expect(err.status).toBe(401);
  });

  it('refuses a wrong secret via the body with invalid_client 401 (no Basic challenge)', async () => {
    const err = await failure({ bodyClientId: postClient.clientId, bodyClientSecret: `${SECRET}x` });
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
    expect(err).not.toBeInstanceOf(InvalidClientBasicError);
  });

  it('refuses a wrong secret via Basic with the Basic challenge error', async () => {
    const err = await failure({ basic: { clientId: basicClient.clientId, clientSecret: 'wrong' } });
    expect(err).toBeInstanceOf(InvalidClientBasicError);
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
  });

  it('refuses the secret hash presented as the secret', async () => {
    const err = await failure({ bodyClientId: postClient.clientId, bodyClientSecret: hashSecret(SECRET) });
    expect(err.error).toBe('invalid_client');
  });

  it('refuses a confidential client without its secret', async () => {
    const err = await failure({ bodyClientId: postClient.clientId });
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
  });

  it('answers an unknown client with invalid_client 401, never invalid_grant', async () => {
    const err = await failure({ bodyClientId: 'no-such-client' });
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
    expect(err).not.toBeInstanceOf(InvalidClientBasicError);
  });

  it('answers an unknown client via Basic with the Basic challenge error', async () => {
    const err = await failure({ basic: { clientId: 'no-such-client', clientSecret: 'x' } });
    expect(err).toBeInstanceOf(InvalidClientBasicError);
    expect(err.status).toBe(401);
  });

  it('refuses a request without any client_id', async () => {
    const err = await failure({});
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
  });

  it('refuses credentials sent both in the header and in the body with invalid_request', async () => {
    const err = await failure({
      basic: { clientId: basicClient.clientId, clientSecret: SECRET },
      bodyClientId: basicClient.clientId,
      bodyClientSecret: SECRET,
    });
    expect(err.error).toBe('invalid_request');
    expect(err.status).toBe(400);
  });
});

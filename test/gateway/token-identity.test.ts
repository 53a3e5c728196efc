import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { hashSecret } from '../../src/crypto/secrets.js';
import { identityHeaders } from '../../src/gateway/identity-headers.js';
import { storeTokenVerifier } from '../../src/gateway/token-verifier.js';
import { clientRecord, tokenPair } from '../helpers/records.js';
import { makeContext, type TestContext } from '../helpers/unit-context.js';

/**
 * Who the upstream is told about (issue 12, "Identity in tokens"): a token of a grant that a
 * person approved after signing in carries them, and the gateway forwards their subject and
 * e-mail as X-Latchkey-Subject and X-Latchkey-Email, and the username /introspect answers as
 * X-Latchkey-Username; a PIN-approved token names nobody.
 */
describe('the gateway tells upstreams who approved the grant', () => {
  let t: TestContext;
  beforeEach(async () => {
    t = await makeContext();
    await t.store.putClient(clientRecord('client-1', 'Claude Ünïcode'));
  });
  afterEach(() => t.close());

  it('from the token record, without a round trip', async () => {
    const { access, refresh } = tokenPair('client-1', 'grant-1', hashSecret('tok-alice'), hashSecret('ref-alice'), t.clock.now());
    const approvedBy = { subject: 'oidc:accounts.google.com:1098', email: 'alice@example.com', name: 'Alice Example', provider: 'oidc', emailVerified: true };
    await t.store.putTokens({ ...access, approvedBy }, { ...refresh, approvedBy });
    const verified = await storeTokenVerifier(t.store, t.clock)('tok-alice');
    expect(verified).toEqual({
      clientId: 'client-1',
      grantId: 'grant-1',
      clientName: 'Claude Ünïcode',
      scopes: ['mcp'],
      resource: 'https://mcp.example.com/mcp',
      subject: 'oidc:accounts.google.com:1098',
      email: 'alice@example.com',
      username: 'alice@example.com',
    });
    expect(identityHeaders(verified ?? { clientId: '', grantId: '', scopes: [], resource: '' })).toEqual({
      'X-Latchkey-Client-Id': 'client-1',
      'X-Latchkey-Scope': 'mcp',
      'X-Latchkey-Client-Name': 'Claude %C3%9Cn%C3%AFcode',
      'X-Latchkey-Subject': 'oidc:accounts.google.com:1098',
      'X-Latchkey-Email': 'alice@example.com',
      'X-Latchkey-Username': 'alice@example.com',
    });
  });

  it('never forwards an address the grant recorded unverified (a grant from before such addresses were dropped)', async () => {
    const { access, refresh } = tokenPair('client-1', 'grant-3', hashSecret('tok-legacy'), hashSecret('ref-legacy'), t.clock.now());
    const approvedBy = { subject: 'github:1002', email: 'typed@example.com', name: 'Typed', provider: 'github', emailVerified: false, githubLogin: 'typed-dev' };
    await t.store.putTokens({ ...access, approvedBy }, { ...refresh, approvedBy });
    const verified = await storeTokenVerifier(t.store, t.clock)('tok-legacy');
    expect(verified).toMatchObject({ subject: 'github:1002', username: 'typed-dev' });
    expect(verified?.email).toBeUndefined();
    expect(identityHeaders(verified ?? { clientId: '', grantId: '', scopes: [], resource: '' })['X-Latchkey-Email']).toBeUndefined();
  });

  it('a PIN-approved token has no person, so no identity headers', async () => {
    const { access, refresh } = tokenPair('client-1', 'grant-2', hashSecret('tok-pin'), hashSecret('ref-pin'), t.clock.now());
    await t.store.putTokens(access, refresh);
    const verified = await storeTokenVerifier(t.store, t.clock)('tok-pin');
    expect(verified?.subject).toBeUndefined();
    const headers = identityHeaders(verified ?? { clientId: '', grantId: '', scopes: [], resource: '' });
    expect(Object.keys(headers)).toEqual(['X-Latchkey-Client-Id', 'X-Latchkey-Scope', 'X-Latchkey-Client-Name']);
  });
});

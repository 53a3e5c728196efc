import { exchangeAuthorizationCode, issueAuthorizationCode } from '../../src/oauth/grants/authorization-code.js';
import type { AuthorizationRequest } from '../../src/oauth/authorization-request.js';
import { OAuthError } from '../../src/oauth/errors.js';
import { introspectToken } from '../../src/oauth/introspection.js';
import { s256 } from '../../src/oauth/pkce.js';
import { refreshAccessToken, ROTATED_TOKEN_RETENTION_MS } from '../../src/oauth/grants/refresh-token.js';
import { revokeToken } from '../../src/oauth/revocation.js';
import { hashSecret } from '../../src/crypto/secrets.js';
import type { TokenResponse } from '../../src/oauth/token-issuer.js';
import type { AccessPolicy } from '../../src/identity/access-policy.js';
import type { OAuthContext } from '../../src/oauth/context.js';
import type { Approver, AuditEvent, ClientRecord } from '../../src/store/types.js';
import { clientRecord, type TestContext } from '../helpers/unit-context.js';

const VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const REDIRECT = 'https://claude.ai/api/mcp/auth_callback';
const RESOURCE = 'https://mcp.example.com/mcp';

async function rejection(promise: Promise<unknown>): Promise<OAuthError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  throw new Error('expected an OAuthError');
}

/**
 * The grant rules (src/oauth/) end to end against a real store: run on the files by
 * grants.test.ts and on PostgreSQL by test/store/postgres-grants.test.ts, so rotation with
 * its grace window, replay detection and revocation behave the same on both.
 */
export function grantTests(storeName: string, makeContext: () => Promise<TestContext>): void {
  describe(`grants against ${storeName}`, () => {
    let t: TestContext;
    let client: ClientRecord;
    let other: ClientRecord;

    beforeEach(async () => {
      t = await makeContext();
      client = clientRecord({}, { redirect_uris: [REDIRECT] });
      other = clientRecord({}, { redirect_uris: [REDIRECT] });
      await t.store.putClient(client);
      await t.store.putClient(other);
    });

    afterEach(async () => {
      await t.close();
    });

    const request = (overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({
      clientId: client.clientId,
      redirectUri: REDIRECT,
      codeChallenge: s256(VERIFIER),
      scopes: ['read', 'write'],
      resource: RESOURCE,
      ...overrides,
    });

    const exchange = (code: string, overrides: Record<string, string | undefined> = {}, who: ClientRecord = client): Promise<TokenResponse> =>
      exchangeAuthorizationCode(t.ctx, who, { code, redirect_uri: REDIRECT, code_verifier: VERIFIER, ...overrides });

    async function tokensFor(overrides: Partial<AuthorizationRequest> = {}, who: ClientRecord = client): Promise<TokenResponse> {
      const { code } = await issueAuthorizationCode(t.ctx, request({ clientId: who.clientId, ...overrides }));
      return exchange(code, {}, who);
    }

    const accessLive = async (token: string): Promise<boolean> =>
      (await t.store.getAccessToken(hashSecret(token), t.clock.now())) !== undefined;
    const refreshLive = async (token: string | undefined): Promise<boolean> =>
      token !== undefined && (await t.store.getRefreshToken(hashSecret(token), t.clock.now())) !== undefined;

    describe('authorization code', () => {
      it('issues a code of at least 256 bits stored only as its hash, bound to the request', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request({ state: 'xyz' }));
        expect(Buffer.from(code, 'base64url').length).toBeGreaterThanOrEqual(32);
        const record = await t.store.getCode(hashSecret(code), t.clock.now());
        expect(record).toMatchObject({
          clientId: client.clientId,
          redirectUri: REDIRECT,
          codeChallenge: s256(VERIFIER),
          scopes: ['read', 'write'],
          resource: RESOURCE,
          expiresAt: t.clock.now() + 600_000,
        });
        expect(record?.consumedAt).toBeUndefined();
        expect(JSON.stringify(record)).not.toContain(code);
      });

      it('exchanges a code for bound, opaque tokens', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        const response = await exchange(code);
        expect(response).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'read write' });
        expect(Buffer.from(response.access_token, 'base64url').length).toBeGreaterThanOrEqual(32);
        expect(response.refresh_token).toBeDefined();
        expect(response.refresh_token).not.toBe(response.access_token);
        const access = await t.store.getAccessToken(hashSecret(response.access_token), t.clock.now());
        expect(access).toMatchObject({ clientId: client.clientId, scopes: ['read', 'write'], resource: RESOURCE });
        const code2 = await t.store.getCode(hashSecret(code), t.clock.now());
        expect(code2?.consumedAt).toBe(t.clock.now());
        expect(access?.grantId).toBe(code2?.grantId);
      });

      it('accepts an absent redirect_uri and a matching resource', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        await expect(exchange(code, { redirect_uri: undefined, resource: 'https://mcp.example.com/mcp' })).resolves.toHaveProperty(
          'access_token',
        );
      });

      it('issues no refresh token to a client without the refresh_token grant', async () => {
        const noRefresh = clientRecord({}, { redirect_uris: [REDIRECT], grant_types: ['authorization_code'] });
        await t.store.putClient(noRefresh);
        const response = await tokensFor({}, noRefresh);
        expect(response.refresh_token).toBeUndefined();
        expect(response).not.toHaveProperty('refresh_token');
      });

      it('is single use: a replay gets invalid_grant and revokes every token of the grant', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        const first = await exchange(code);
        const refreshed = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        expect(await accessLive(first.access_token)).toBe(true);
        expect(await accessLive(refreshed.access_token)).toBe(true);

        const err = await rejection(exchange(code));
        expect(err.error).toBe('invalid_grant');
        expect(await accessLive(first.access_token)).toBe(false);
        expect(await accessLive(refreshed.access_token)).toBe(false);
        expect(await refreshLive(first.refresh_token)).toBe(false);
        expect(await refreshLive(refreshed.refresh_token)).toBe(false);
        // The code itself is gone with its grant; a third attempt is simply unknown.
        expect((await rejection(exchange(code))).error).toBe('invalid_grant');
      });

      it('a replay does not touch other grants', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        await exchange(code);
        const unrelated = await tokensFor();
        await rejection(exchange(code));
        expect(await accessLive(unrelated.access_token)).toBe(true);
        expect(await refreshLive(unrelated.refresh_token)).toBe(true);
      });

      it('concurrent exchanges of one code: exactly one wins', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => exchange(code)));
        const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected') expect((r.reason as OAuthError).error).toBe('invalid_grant');
        }
        // The other presentations are replays (RFC 6749 §4.1.2): what the winner got is revoked too.
        expect(await accessLive(won[0]?.access_token ?? '')).toBe(false);
        expect(await refreshLive(won[0]?.refresh_token)).toBe(false);
      });

      it.each([
        ['a wrong verifier', { code_verifier: `${VERIFIER.slice(0, -1)}Y` }],
        ['a missing verifier', { code_verifier: undefined }],
        ['a malformed verifier', { code_verifier: 'short' }],
        ['a wrong redirect_uri', { redirect_uri: 'https://claude.com/api/mcp/auth_callback' }],
        ['a redirect_uri with another port', { redirect_uri: 'https://claude.ai:443/api/mcp/auth_callback' }],
      ])('%s gets invalid_grant and does not consume the code', async (_name, overrides) => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        const err = await rejection(exchange(code, overrides));
        expect(err.error).toBe('invalid_grant');
        expect((await t.store.getCode(hashSecret(code), t.clock.now()))?.consumedAt).toBeUndefined();
        await expect(exchange(code)).resolves.toHaveProperty('access_token');
      });

      it('another client gets invalid_grant and does not consume the code', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        const err = await rejection(exchange(code, {}, other));
        expect(err.error).toBe('invalid_grant');
        await expect(exchange(code)).resolves.toHaveProperty('access_token');
      });

      it('another resource gets invalid_target and does not consume the code', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        const err = await rejection(exchange(code, { resource: 'https://other.example.com' }));
        expect(err.error).toBe('invalid_target');
        await expect(exchange(code)).resolves.toHaveProperty('access_token');
      });

      it('an expired code gets invalid_grant', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        t.clock.advance(600_000);
        expect((await rejection(exchange(code))).error).toBe('invalid_grant');
      });

      it('a code just before expiry still works', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        t.clock.advance(599_999);
        await expect(exchange(code)).resolves.toHaveProperty('access_token');
      });

      it('an unknown code gets invalid_grant; a missing code gets invalid_request', async () => {
        expect((await rejection(exchange('no-such-code'))).error).toBe('invalid_grant');
        expect((await rejection(exchangeAuthorizationCode(t.ctx, client, { code_verifier: VERIFIER }))).error).toBe('invalid_request');
      });
    });

    describe('refresh token', () => {
      it('rotates on every use and keeps scope and audience', async () => {
        const first = await tokensFor();
        const second = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        expect(second.refresh_token).toBeDefined();
        expect(second.refresh_token).not.toBe(first.refresh_token);
        expect(second.access_token).not.toBe(first.access_token);
        expect(second.scope).toBe('read write');
        const access = await t.store.getAccessToken(hashSecret(second.access_token), t.clock.now());
        expect(access?.resource).toBe(RESOURCE);
        const old = await t.store.getRefreshToken(hashSecret(first.refresh_token ?? ''), t.clock.now());
        expect(old?.rotatedAt).toBe(t.clock.now());
        const third = await refreshAccessToken(t.ctx, client, { refresh_token: second.refresh_token });
        expect(third.refresh_token).not.toBe(second.refresh_token);
      });

      it('the just-rotated token still works within the grace window', async () => {
        const first = await tokensFor();
        const a = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        t.clock.advance(30_000);
        const b = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        expect(b.access_token).not.toBe(a.access_token);
        expect(b.refresh_token).not.toBe(a.refresh_token);
        // Both sibling processes end up with working tokens.
        expect(await accessLive(a.access_token)).toBe(true);
        expect(await accessLive(b.access_token)).toBe(true);
        await expect(refreshAccessToken(t.ctx, client, { refresh_token: a.refresh_token })).resolves.toHaveProperty('access_token');
        await expect(refreshAccessToken(t.ctx, client, { refresh_token: b.refresh_token })).resolves.toHaveProperty('access_token');
      });

      it('concurrent refreshes with one token all succeed within the grace window', async () => {
        const first = await tokensFor();
        const results = await Promise.all(Array.from({ length: 5 }, () => refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token })));
        expect(new Set(results.map((r) => r.refresh_token)).size).toBe(5);
      });

      it('reuse after the grace window revokes the whole grant', async () => {
        const first = await tokensFor();
        const rotated = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        t.clock.advance(30_001);
        const err = await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token }));
        expect(err.error).toBe('invalid_grant');
        expect(await accessLive(first.access_token)).toBe(false);
        expect(await accessLive(rotated.access_token)).toBe(false);
        expect(await refreshLive(rotated.refresh_token)).toBe(false);
        expect((await rejection(refreshAccessToken(t.ctx, client, { refresh_token: rotated.refresh_token }))).error).toBe('invalid_grant');
      });

      it('reuse after the grace window leaves other grants alone', async () => {
        const first = await tokensFor();
        const unrelated = await tokensFor();
        await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        t.clock.advance(60_000);
        await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token }));
        expect(await refreshLive(unrelated.refresh_token)).toBe(true);
        expect(await accessLive(unrelated.access_token)).toBe(true);
      });

      it('a rotated token is forgotten after the retention time', async () => {
        const first = await tokensFor();
        const rotated = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        t.clock.advance(ROTATED_TOKEN_RETENTION_MS);
        expect((await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token }))).error).toBe('invalid_grant');
        // Unknown by then, so it revokes nothing.
        expect(await refreshLive(rotated.refresh_token)).toBe(true);
      });

      it('narrows scope for one access token without shrinking the grant', async () => {
        const first = await tokensFor();
        const narrow = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token, scope: 'read' });
        expect(narrow.scope).toBe('read');
        expect((await t.store.getAccessToken(hashSecret(narrow.access_token), t.clock.now()))?.scopes).toEqual(['read']);
        const full = await refreshAccessToken(t.ctx, client, { refresh_token: narrow.refresh_token });
        expect(full.scope).toBe('read write');
      });

      it('refuses widening with invalid_scope and does not rotate', async () => {
        const first = await tokensFor({ scopes: ['read'] });
        const err = await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token, scope: 'read admin' }));
        expect(err.error).toBe('invalid_scope');
        const still = await t.store.getRefreshToken(hashSecret(first.refresh_token ?? ''), t.clock.now());
        expect(still?.rotatedAt).toBeUndefined();
      });

      it('refuses another resource with invalid_target and does not rotate', async () => {
        const first = await tokensFor();
        const err = await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token, resource: 'https://other.example.com' }));
        expect(err.error).toBe('invalid_target');
        await expect(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token, resource: RESOURCE })).resolves.toHaveProperty(
          'access_token',
        );
      });

      it('refuses another client\'s refresh token with invalid_grant', async () => {
        const first = await tokensFor();
        expect((await rejection(refreshAccessToken(t.ctx, other, { refresh_token: first.refresh_token }))).error).toBe('invalid_grant');
        await expect(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token })).resolves.toHaveProperty('access_token');
      });

      it('refuses an expired refresh token', async () => {
        const first = await tokensFor();
        t.clock.advance(2_592_000_000);
        expect((await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token }))).error).toBe('invalid_grant');
      });

      it('refuses an access token presented as a refresh token', async () => {
        const first = await tokensFor();
        expect((await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.access_token }))).error).toBe('invalid_grant');
      });

      it('requires the refresh_token parameter and the registered grant', async () => {
        expect((await rejection(refreshAccessToken(t.ctx, client, {}))).error).toBe('invalid_request');
        const noRefresh = clientRecord({}, { grant_types: ['authorization_code'] });
        expect((await rejection(refreshAccessToken(t.ctx, noRefresh, { refresh_token: 'x' }))).error).toBe('unauthorized_client');
      });
    });

    describe('revocation (RFC 7009)', () => {
      it('revoking a refresh token revokes the whole grant', async () => {
        const first = await tokensFor();
        const second = await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        await revokeToken(t.ctx, client, { token: second.refresh_token, token_type_hint: 'refresh_token' });
        expect(await refreshLive(second.refresh_token)).toBe(false);
        expect(await accessLive(first.access_token)).toBe(false);
        expect(await accessLive(second.access_token)).toBe(false);
      });

      it('revoking a refresh token without a hint works too', async () => {
        const first = await tokensFor();
        await revokeToken(t.ctx, client, { token: first.refresh_token });
        expect(await refreshLive(first.refresh_token)).toBe(false);
        expect(await accessLive(first.access_token)).toBe(false);
      });

      it('revoking an access token revokes only that token, whatever the hint', async () => {
        const first = await tokensFor();
        await revokeToken(t.ctx, client, { token: first.access_token, token_type_hint: 'refresh_token' });
        expect(await accessLive(first.access_token)).toBe(false);
        expect(await refreshLive(first.refresh_token)).toBe(true);
      });

      it('another client\'s token is left untouched, and the call still succeeds', async () => {
        const mine = await tokensFor();
        await expect(revokeToken(t.ctx, other, { token: mine.refresh_token })).resolves.toBeUndefined();
        await expect(revokeToken(t.ctx, other, { token: mine.access_token })).resolves.toBeUndefined();
        expect(await refreshLive(mine.refresh_token)).toBe(true);
        expect(await accessLive(mine.access_token)).toBe(true);
      });

      it('an unknown token is a success', async () => {
        await expect(revokeToken(t.ctx, client, { token: 'never-issued', token_type_hint: 'access_token' })).resolves.toBeUndefined();
        await expect(revokeToken(t.ctx, client, { token: 'never-issued', token_type_hint: 'bogus' })).resolves.toBeUndefined();
      });

      it('a missing token is invalid_request', async () => {
        expect((await rejection(revokeToken(t.ctx, client, {}))).error).toBe('invalid_request');
      });
    });

    describe('introspection (RFC 7662)', () => {
      it('describes a live access token', async () => {
        const issuedAt = t.clock.now();
        const tokens = await tokensFor();
        const result = await introspectToken(t.ctx, { token: tokens.access_token });
        expect(result).toMatchObject({
          active: true,
          client_id: client.clientId,
          scope: 'read write',
          aud: RESOURCE,
          iss: 'https://auth.example.com',
          iat: Math.floor(issuedAt / 1000),
          exp: Math.floor(issuedAt / 1000) + 3600,
          token_type: 'Bearer',
        });
      });

      it('is inactive for an expired access token', async () => {
        const tokens = await tokensFor();
        t.clock.advance(3_600_000);
        expect(await introspectToken(t.ctx, { token: tokens.access_token })).toEqual({ active: false });
      });

      it('is inactive for unknown, refresh and revoked tokens', async () => {
        const tokens = await tokensFor();
        expect(await introspectToken(t.ctx, { token: 'unknown' })).toEqual({ active: false });
        expect(await introspectToken(t.ctx, { token: '' })).toEqual({ active: false });
        expect(await introspectToken(t.ctx, { token: tokens.refresh_token })).toEqual({ active: false });
        await revokeToken(t.ctx, client, { token: tokens.access_token });
        expect(await introspectToken(t.ctx, { token: tokens.access_token })).toEqual({ active: false });
      });

      it('requires the token parameter', async () => {
        expect((await rejection(introspectToken(t.ctx, {}))).error).toBe('invalid_request');
      });
    });

    describe('who approved: identity in tokens (issue 12)', () => {
      const alice: Approver = { subject: 'oidc:idp.example.com:alice', email: 'alice@example.com', name: 'Alice', provider: 'oidc', emailVerified: true };
      const policy = (lists: Partial<AccessPolicy> = {}): AccessPolicy => ({ emails: [], domains: [], githubUsers: [], githubOrgs: [], ownerEmails: [], ...lists });
      /** The rules' context with other allow-lists, as after a restart with changed OAUTH_ALLOWED_*. */
      const withPolicy = (lists: Partial<AccessPolicy>): OAuthContext => ({ ...t.ctx, accessPolicy: policy(lists) });
      const events = (type: string): Promise<AuditEvent[]> => t.audit.list({ limit: 100, type });

      async function personTokens(approver: Approver, ctx: OAuthContext): Promise<TokenResponse> {
        const { code } = await issueAuthorizationCode(ctx, request(), approver);
        return exchangeAuthorizationCode(ctx, client, { code, redirect_uri: REDIRECT, code_verifier: VERIFIER });
      }

      it('goes from the code to the tokens and to every rotated token; introspection names them', async () => {
        const ctx = withPolicy({ emails: ['alice@example.com'] });
        const first = await personTokens(alice, ctx);
        expect((await t.store.getAccessToken(hashSecret(first.access_token), t.clock.now()))?.approvedBy).toEqual(alice);
        expect((await t.store.getRefreshToken(hashSecret(first.refresh_token ?? ''), t.clock.now()))?.approvedBy).toEqual(alice);
        const second = await refreshAccessToken(ctx, client, { refresh_token: first.refresh_token });
        expect((await t.store.getRefreshToken(hashSecret(second.refresh_token ?? ''), t.clock.now()))?.approvedBy).toEqual(alice);
        expect(await introspectToken(ctx, { token: second.access_token })).toMatchObject({ active: true, sub: alice.subject, username: 'alice@example.com' });
        expect((await t.store.listGrants(t.clock.now(), { subject: alice.subject }))[0]?.approvedBy).toEqual(alice);
      });

      it('a PIN approval names nobody: sub is the grant id and there is no username', async () => {
        const tokens = await tokensFor();
        const result = await introspectToken(t.ctx, { token: tokens.access_token });
        const record = await t.store.getAccessToken(hashSecret(tokens.access_token), t.clock.now());
        expect(result).toMatchObject({ active: true, sub: record?.grantId });
        expect(result).not.toHaveProperty('username');
      });

      it('a GitHub person without a verified e-mail is shown by login (unique, unlike the display name)', async () => {
        const ctx = withPolicy({ githubUsers: ['octocat'] });
        const octocat: Approver = { subject: 'github:583231', name: 'The Octocat', provider: 'github', emailVerified: false, githubLogin: 'octocat' };
        const tokens = await personTokens(octocat, ctx);
        expect(await introspectToken(ctx, { token: tokens.access_token })).toMatchObject({ sub: 'github:583231', username: 'octocat' });
      });

      it('at refresh, a person removed from the allow-lists gets invalid_grant and loses the grant', async () => {
        const tokens = await personTokens(alice, withPolicy({ emails: ['alice@example.com'] }));
        const removed = withPolicy({ emails: ['bob@example.com'], domains: ['elsewhere.example'] });
        const err = await rejection(refreshAccessToken(removed, client, { refresh_token: tokens.refresh_token }));
        expect(err.error).toBe('invalid_grant');
        expect(err.message).toContain('no longer allowed');
        expect(await accessLive(tokens.access_token)).toBe(false);
        expect(await refreshLive(tokens.refresh_token)).toBe(false);
        const [revoked] = await events('grant.revoked');
        expect(revoked).toMatchObject({ actor: 'system', subject: alice.subject, clientId: client.clientId, detail: { reason: 'allow-list-removal', email: 'alice@example.com' } });
      });

      it('at refresh, every kind of listing is judged again: domain, owner, GitHub login, GitHub organisation', async () => {
        const byDomain = await personTokens(alice, withPolicy({ domains: ['example.com'] }));
        await expect(refreshAccessToken(withPolicy({ ownerEmails: ['alice@example.com'] }), client, { refresh_token: byDomain.refresh_token })).resolves.toHaveProperty('access_token');

        const octocat: Approver = { subject: 'github:583231', provider: 'github', emailVerified: false, githubLogin: 'Octocat', githubOrgs: ['Acme'] };
        const byOrg = await personTokens(octocat, withPolicy({ githubOrgs: ['acme'] }));
        const kept = await refreshAccessToken(withPolicy({ githubOrgs: ['acme'] }), client, { refresh_token: byOrg.refresh_token });
        // The organisation left the list: membership recorded at sign-in no longer counts.
        expect((await rejection(refreshAccessToken(withPolicy({ githubOrgs: ['other-org'] }), client, { refresh_token: kept.refresh_token }))).error).toBe('invalid_grant');

        const byLogin = await personTokens(octocat, withPolicy({ githubUsers: ['octocat'] }));
        expect((await rejection(refreshAccessToken(withPolicy({ githubUsers: ['someone-else'] }), client, { refresh_token: byLogin.refresh_token }))).error).toBe('invalid_grant');
      });

      it('an unverified address never keeps a grant alive, even when it is listed', async () => {
        const unverified: Approver = { ...alice, emailVerified: false };
        const tokens = await personTokens(unverified, withPolicy({ emails: ['alice@example.com'] }));
        expect((await rejection(refreshAccessToken(withPolicy({ emails: ['alice@example.com'] }), client, { refresh_token: tokens.refresh_token }))).error).toBe('invalid_grant');
      });

      it('PIN-approved grants are not judged by the allow-lists', async () => {
        const tokens = await tokensFor();
        await expect(refreshAccessToken(withPolicy({ emails: ['bob@example.com'] }), client, { refresh_token: tokens.refresh_token })).resolves.toHaveProperty('access_token');
      });
    });

    describe('audit events of the grant rules', () => {
      const events = (type: string): Promise<AuditEvent[]> => t.audit.list({ limit: 100, type });

      it('a replayed code: one grant.revoked, reason code-replay', async () => {
        const { code } = await issueAuthorizationCode(t.ctx, request());
        await exchange(code);
        await rejection(exchange(code));
        const revoked = await events('grant.revoked');
        expect(revoked).toHaveLength(1);
        expect(revoked[0]).toMatchObject({ actor: 'system', clientId: client.clientId, detail: { reason: 'code-replay', what: 'grant' } });
        expect(JSON.stringify(revoked)).not.toContain(code);
      });

      it('a reused refresh token: one grant.revoked, reason refresh-reuse', async () => {
        const first = await tokensFor();
        await refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token });
        t.clock.advance(30_001);
        await rejection(refreshAccessToken(t.ctx, client, { refresh_token: first.refresh_token }));
        const revoked = await events('grant.revoked');
        expect(revoked).toHaveLength(1);
        expect(revoked[0]?.detail).toMatchObject({ reason: 'refresh-reuse' });
      });

      it('the revocation endpoint: the grant for a refresh token, the token alone for an access token; nothing for others\' tokens', async () => {
        const first = await tokensFor();
        const second = await tokensFor();
        await revokeToken(t.ctx, client, { token: first.access_token }, '203.0.113.9');
        await revokeToken(t.ctx, client, { token: second.refresh_token }, '203.0.113.9');
        await revokeToken(t.ctx, other, { token: first.refresh_token });
        await revokeToken(t.ctx, client, { token: 'never-issued' });
        const revoked = await events('grant.revoked');
        expect(revoked.map((e) => ({ actor: e.actor, ip: e.ip, what: e.detail?.what, reason: e.detail?.reason }))).toEqual([
          { actor: 'client', ip: '203.0.113.9', what: 'grant', reason: 'revocation-endpoint' },
          { actor: 'client', ip: '203.0.113.9', what: 'access-token', reason: 'revocation-endpoint' },
        ]);
      });
    });
  });
}

import { createHash } from 'node:crypto';
import {
  StoreUnavailableError,
  type AccessTokenRecord,
  type Approver,
  type AuditEvent,
  type Backend,
  type ClientRecord,
  type CodeRecord,
  type RefreshTokenRecord,
} from '../../src/store/types.js';

/**
 * The store contract: what every storage backend must do, as jest tests. A backend's test
 * file calls {@link storeContract} with a harness that opens that backend on fresh storage;
 * the same tests then run against it (test/store/file-backend.test.ts,
 * test/store/postgres-backend.test.ts). Time is passed in as `now`, never read from a clock,
 * so expiry is tested at exact instants.
 */

export interface ContractHarness {
  /** Opens a backend on this harness's storage; called again after close(), it is a restart. */
  open(): Promise<Backend>;
  /**
   * Opens another instance on the same storage while the first runs, for backends that
   * serve several instances (PostgreSQL: its own pool). Undefined for the files.
   */
  openPeer?: () => Promise<Backend>;
  /**
   * Makes the storage fail under `backend` (the files: every write fails as EIO; PostgreSQL:
   * the server stops). Resolves to a function that heals it.
   */
  breakStorage(backend: Backend): Promise<() => Promise<void>>;
  /** Closes whatever is still open and removes the storage. */
  destroy(): Promise<void>;
}

const NOW = Date.UTC(2026, 0, 1);
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

const hash = (raw: string): string => createHash('sha256').update(raw).digest('base64url');

function client(clientId: string, issuedAt = NOW, extra: Partial<ClientRecord> = {}): ClientRecord {
  return {
    clientId,
    issuedAt,
    metadata: {
      client_name: `name of ${clientId}`,
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
    ...extra,
  };
}

function code(raw: string, extra: Partial<CodeRecord> = {}): CodeRecord {
  return {
    hash: hash(raw),
    clientId: 'client-a',
    grantId: 'grant-1',
    redirectUri: 'https://claude.ai/api/mcp/auth_callback',
    codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    scopes: ['read'],
    resource: 'https://mcp.example.com/mcp',
    issuedAt: NOW,
    expiresAt: NOW + 10 * MINUTE,
    ...extra,
  };
}

function access(raw: string, extra: Partial<AccessTokenRecord> = {}): AccessTokenRecord {
  return {
    hash: hash(raw),
    clientId: 'client-a',
    grantId: 'grant-1',
    scopes: ['read'],
    resource: 'https://mcp.example.com/mcp',
    issuedAt: NOW,
    expiresAt: NOW + HOUR,
    ...extra,
  };
}

function refresh(raw: string, extra: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return { ...access(raw), expiresAt: NOW + 30 * DAY, ...extra };
}

const alice: Approver = { subject: 'alice-sub', email: 'alice@example.com', name: 'Alice' };
const bob: Approver = { subject: 'bob-sub' };

/**
 * Defines the contract's tests for one backend. `outage: false` skips the test of a failing
 * storage, for a harness that cannot make its storage fail (PostgreSQL on a server the tests
 * did not start: they cannot stop it).
 */
export function storeContract(name: string, makeHarness: () => Promise<ContractHarness>, options: { outage: boolean } = { outage: true }): void {
  describe(`store contract: ${name}`, () => {
    let h: ContractHarness;
    let b: Backend;
    /** Closes the current backend and opens it again on the same storage. */
    const reopen = async (): Promise<Backend> => {
      await b.close();
      b = await h.open();
      return b;
    };

    beforeEach(async () => {
      h = await makeHarness();
      b = await h.open();
    });
    afterEach(async () => {
      await h.destroy();
    });

    describe('clients', () => {
      it('stores, replaces and returns a client; an unknown one is undefined', async () => {
        const c = client('client-a', NOW, { clientSecretHash: hash('secret') });
        await b.store.putClient(c);
        expect(await b.store.getClient('client-a')).toEqual(c);
        expect(await b.store.getClient('nobody')).toBeUndefined();
        const renamed = { ...c, metadata: { ...c.metadata, client_name: 'renamed', contacts: ['a@example.com'], application_type: 'native' as const } };
        await b.store.putClient(renamed);
        expect(await b.store.getClient('client-a')).toEqual(renamed);
        expect(await b.store.clientCount()).toBe(1);
      });

      it('touchClient records the last use at most once a minute, and it survives a clean stop', async () => {
        await b.store.putClient(client('client-a'));
        b.store.touchClient('client-a', NOW + 1000);
        b.store.touchClient('client-a', NOW + 2000);
        b.store.touchClient('nobody', NOW);
        await reopen();
        expect((await b.store.getClient('client-a'))?.lastUsedAt).toBe(NOW + 1000);
        b.store.touchClient('client-a', NOW + 1000 + MINUTE);
        await reopen();
        expect((await b.store.getClient('client-a'))?.lastUsedAt).toBe(NOW + 1000 + MINUTE);
      });

      it('markClientApproved keeps the first approval and never sets it back', async () => {
        await b.store.putClient(client('client-a'));
        await b.store.markClientApproved('client-a', NOW + 5);
        await b.store.markClientApproved('client-a', NOW + 9);
        await b.store.markClientApproved('nobody', NOW);
        expect(await b.store.getClient('nobody')).toBeUndefined();
        await reopen();
        expect((await b.store.getClient('client-a'))?.approvedAt).toBe(NOW + 5);
      });

      it('listClients pages through the clients oldest first or newest first, and filters the unapproved', async () => {
        // c3 and c4 registered in the same millisecond: they keep the order they were stored in.
        const ids = ['c1', 'c2', 'c3', 'c4', 'c5'];
        const times = [NOW, NOW + 1, NOW + 2, NOW + 2, NOW + 3];
        for (const [i, id] of ids.entries()) await b.store.putClient(client(id, times[i]));
        await b.store.markClientApproved('c2', NOW + 10);
        await b.store.markClientApproved('c4', NOW + 10);
        const idsOf = (list: ClientRecord[]): string[] => list.map((c) => c.clientId);

        expect(idsOf(await b.store.listClients())).toEqual(ids);
        expect(idsOf(await b.store.listClients({ newestFirst: true }))).toEqual([...ids].reverse());
        expect(idsOf(await b.store.listClients({ offset: 1, limit: 2 }))).toEqual(['c2', 'c3']);
        expect(idsOf(await b.store.listClients({ offset: 4, limit: 2 }))).toEqual(['c5']);
        expect(idsOf(await b.store.listClients({ offset: 5, limit: 2 }))).toEqual([]);
        expect(idsOf(await b.store.listClients({ newestFirst: true, offset: 0, limit: 2 }))).toEqual(['c5', 'c4']);
        expect(idsOf(await b.store.listClients({ unapprovedOnly: true }))).toEqual(['c1', 'c3', 'c5']);
        expect(idsOf(await b.store.listClients({ unapprovedOnly: true, newestFirst: true, limit: 2 }))).toEqual(['c5', 'c3']);
        expect(await b.store.clientCount()).toBe(5);
        expect(await b.store.clientCount({ unapprovedOnly: true })).toBe(3);
        // A client used before approvals were recorded counts as approved.
        await b.store.putClient({ ...client('c6', NOW + 4), lastUsedAt: NOW + 4 });
        expect(idsOf(await b.store.listClients({ unapprovedOnly: true }))).toEqual(['c1', 'c3', 'c5']);
        expect(await b.store.clientCount({ unapprovedOnly: true })).toBe(3);
      });

      it('deleteClient and deleteClients remove the clients and everything issued to them, nothing else', async () => {
        for (const id of ['client-a', 'client-b', 'client-c']) await b.store.putClient(client(id));
        for (const id of ['client-a', 'client-b', 'client-c']) {
          await b.store.putCode(code(`code-${id}`, { clientId: id, grantId: `g-${id}` }));
          await b.store.putTokens(access(`at-${id}`, { clientId: id, grantId: `g-${id}` }), refresh(`rt-${id}`, { clientId: id, grantId: `g-${id}` }));
        }
        expect(await b.store.deleteClient('client-a')).toBe(true);
        expect(await b.store.deleteClient('client-a')).toBe(false);
        expect(await b.store.deleteClients(['client-b', 'client-b', 'nobody'])).toBe(1);
        expect(await b.store.deleteClients([])).toBe(0);
        await reopen();
        for (const id of ['client-a', 'client-b']) {
          expect(await b.store.getClient(id)).toBeUndefined();
          expect(await b.store.getCode(hash(`code-${id}`), NOW)).toBeUndefined();
          expect(await b.store.getAccessToken(hash(`at-${id}`), NOW)).toBeUndefined();
          expect(await b.store.getRefreshToken(hash(`rt-${id}`), NOW)).toBeUndefined();
        }
        expect(await b.store.getClient('client-c')).toBeDefined();
        expect(await b.store.getCode(hash('code-client-c'), NOW)).toBeDefined();
        expect(await b.store.getAccessToken(hash('at-client-c'), NOW)).toBeDefined();
        expect(await b.store.getRefreshToken(hash('rt-client-c'), NOW)).toBeDefined();
      });

      it('deleteUnusedClients deletes only old clients never approved, never an approved or used one', async () => {
        await b.store.putClient(client('old-unused', NOW - 2 * DAY));
        await b.store.putClient(client('old-approved', NOW - 2 * DAY));
        await b.store.markClientApproved('old-approved', NOW - DAY);
        await b.store.putClient(client('old-used', NOW - 2 * DAY, { lastUsedAt: NOW - DAY }));
        // Approved before approvedAt existed: its tokens show it.
        await b.store.putClient(client('old-with-tokens', NOW - 2 * DAY));
        await b.store.putTokens(access('at-legacy', { clientId: 'old-with-tokens' }), undefined);
        await b.store.putClient(client('new-unused', NOW));
        expect(await b.store.deleteUnusedClients(NOW - DAY)).toBe(1);
        expect(await b.store.deleteUnusedClients(NOW - DAY)).toBe(0);
        await reopen();
        expect((await b.store.listClients()).map((c) => c.clientId).sort()).toEqual(['new-unused', 'old-approved', 'old-used', 'old-with-tokens']);
      });
    });

    describe('codes', () => {
      it('returns a code until it expires, consumed or not', async () => {
        await b.store.putCode(code('c1'));
        expect(await b.store.getCode(hash('c1'), NOW)).toEqual(code('c1'));
        expect(await b.store.getCode(hash('c1'), NOW + 10 * MINUTE - 1)).toBeDefined();
        expect(await b.store.getCode(hash('c1'), NOW + 10 * MINUTE)).toBeUndefined();
        expect(await b.store.getCode(hash('unknown'), NOW)).toBeUndefined();
      });

      it('consumeCode marks the code consumed and stores its tokens in one step; a second call stores nothing', async () => {
        await b.store.putCode(code('c1', { approvedBy: alice }));
        const first = await b.store.consumeCode(hash('c1'), NOW + 1, { access: access('at-1', { approvedBy: alice }), refresh: refresh('rt-1', { approvedBy: alice }) });
        expect(first).toEqual(code('c1', { approvedBy: alice }));
        const second = await b.store.consumeCode(hash('c1'), NOW + 2, { access: access('at-2'), refresh: refresh('rt-2') });
        expect(second).toEqual({ ...code('c1', { approvedBy: alice }), consumedAt: NOW + 1 });
        await reopen();
        expect(await b.store.getCode(hash('c1'), NOW + 3)).toEqual({ ...code('c1', { approvedBy: alice }), consumedAt: NOW + 1 });
        expect(await b.store.getAccessToken(hash('at-1'), NOW)).toEqual(access('at-1', { approvedBy: alice }));
        expect(await b.store.getRefreshToken(hash('rt-1'), NOW)).toEqual(refresh('rt-1', { approvedBy: alice }));
        expect(await b.store.getAccessToken(hash('at-2'), NOW)).toBeUndefined();
        expect(await b.store.getRefreshToken(hash('rt-2'), NOW)).toBeUndefined();
      });

      it('consumeCode of an expired or unknown code returns undefined and stores nothing; a refresh token is optional', async () => {
        await b.store.putCode(code('c1'));
        expect(await b.store.consumeCode(hash('c1'), NOW + 10 * MINUTE, { access: access('at-late'), refresh: undefined })).toBeUndefined();
        expect(await b.store.consumeCode(hash('nope'), NOW, { access: access('at-nope'), refresh: undefined })).toBeUndefined();
        expect(await b.store.getAccessToken(hash('at-late'), NOW)).toBeUndefined();
        expect(await b.store.getAccessToken(hash('at-nope'), NOW)).toBeUndefined();
        await b.store.putCode(code('c2'));
        expect(await b.store.consumeCode(hash('c2'), NOW, { access: access('at-only'), refresh: undefined })).toEqual(code('c2'));
        expect(await b.store.getAccessToken(hash('at-only'), NOW)).toEqual(access('at-only'));
      });

      it('of 100 concurrent exchanges of one code, exactly one wins and only its tokens are stored', async () => {
        const instances = h.openPeer ? [b, await h.openPeer()] : [b];
        await b.store.putCode(code('contended'));
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            (instances[i % instances.length] as Backend).store.consumeCode(hash('contended'), NOW + 1, { access: access(`at-${i}`), refresh: refresh(`rt-${i}`) }),
          ),
        );
        const winners = results.flatMap((r, i) => (r && r.consumedAt === undefined ? [i] : []));
        expect(winners).toHaveLength(1);
        expect(results.every((r) => r !== undefined)).toBe(true);
        expect(results.filter((r) => r?.consumedAt === NOW + 1)).toHaveLength(99);
        const winner = winners[0] ?? -1;
        for (let i = 0; i < 100; i++) {
          expect(await b.store.getAccessToken(hash(`at-${i}`), NOW)).toEqual(i === winner ? access(`at-${i}`) : undefined);
          expect(await b.store.getRefreshToken(hash(`rt-${i}`), NOW)).toEqual(i === winner ? refresh(`rt-${i}`) : undefined);
        }
      });
    });

    describe('tokens', () => {
      it('returns tokens until they expire; deleteAccessToken says whether there was one', async () => {
        await b.store.putTokens(access('at'), refresh('rt'));
        await b.store.putTokens(access('at-alone'), undefined);
        expect(await b.store.getAccessToken(hash('at'), NOW + HOUR - 1)).toEqual(access('at'));
        expect(await b.store.getAccessToken(hash('at'), NOW + HOUR)).toBeUndefined();
        expect(await b.store.getRefreshToken(hash('rt'), NOW + 30 * DAY - 1)).toEqual(refresh('rt'));
        expect(await b.store.getRefreshToken(hash('rt'), NOW + 30 * DAY)).toBeUndefined();
        expect(await b.store.getRefreshToken(hash('at'), NOW)).toBeUndefined();
        expect(await b.store.deleteAccessToken(hash('at-alone'))).toBe(true);
        expect(await b.store.deleteAccessToken(hash('at-alone'))).toBe(false);
        expect(await b.store.getAccessToken(hash('at-alone'), NOW)).toBeUndefined();
      });

      it('rotateRefreshToken rotates once, keeps the old token until retainUntil, and stores the successors', async () => {
        await b.store.putTokens(access('at-0'), refresh('rt-0', { approvedBy: bob }));
        const successors = { access: access('at-1', { approvedBy: bob }), refresh: refresh('rt-1', { approvedBy: bob }) };
        const before = await b.store.rotateRefreshToken(hash('rt-0'), NOW + 5, NOW + 5 + DAY, successors);
        expect(before).toEqual(refresh('rt-0', { approvedBy: bob }));
        const again = await b.store.rotateRefreshToken(hash('rt-0'), NOW + 6, NOW + 6 + DAY, { access: access('at-x'), refresh: refresh('rt-x') });
        expect(again).toEqual(refresh('rt-0', { approvedBy: bob, rotatedAt: NOW + 5, expiresAt: NOW + 5 + DAY }));
        await reopen();
        expect(await b.store.getRefreshToken(hash('rt-0'), NOW + 5 + DAY - 1)).toEqual(refresh('rt-0', { approvedBy: bob, rotatedAt: NOW + 5, expiresAt: NOW + 5 + DAY }));
        expect(await b.store.getRefreshToken(hash('rt-0'), NOW + 5 + DAY)).toBeUndefined();
        expect(await b.store.getAccessToken(hash('at-1'), NOW)).toEqual(successors.access);
        expect(await b.store.getRefreshToken(hash('rt-1'), NOW)).toEqual(successors.refresh);
        expect(await b.store.getAccessToken(hash('at-x'), NOW)).toBeUndefined();
        expect(await b.store.getRefreshToken(hash('rt-x'), NOW)).toBeUndefined();
      });

      it('rotateRefreshToken keeps the earlier expiry, and refuses an expired or unknown token', async () => {
        await b.store.putTokens(access('at-0'), refresh('rt-0', { expiresAt: NOW + HOUR }));
        await b.store.rotateRefreshToken(hash('rt-0'), NOW, NOW + DAY, { access: access('at-1'), refresh: refresh('rt-1') });
        expect(await b.store.getRefreshToken(hash('rt-0'), NOW)).toMatchObject({ rotatedAt: NOW, expiresAt: NOW + HOUR });
        expect(await b.store.rotateRefreshToken(hash('rt-1'), NOW + 30 * DAY, NOW + 31 * DAY, { access: access('at-2'), refresh: refresh('rt-2') })).toBeUndefined();
        expect(await b.store.rotateRefreshToken(hash('unknown'), NOW, NOW + DAY, { access: access('at-3'), refresh: refresh('rt-3') })).toBeUndefined();
        for (const raw of ['rt-2', 'rt-3']) expect(await b.store.getRefreshToken(hash(raw), NOW)).toBeUndefined();
      });

      it('of 100 concurrent refreshes with one token, exactly one rotates it and only its successors are stored', async () => {
        const instances = h.openPeer ? [b, await h.openPeer()] : [b];
        await b.store.putTokens(access('at-0'), refresh('rt-0'));
        const results = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            (instances[i % instances.length] as Backend).store.rotateRefreshToken(hash('rt-0'), NOW + 1, NOW + DAY, { access: access(`at-n${i}`), refresh: refresh(`rt-n${i}`) }),
          ),
        );
        const winners = results.flatMap((r, i) => (r && r.rotatedAt === undefined ? [i] : []));
        expect(winners).toHaveLength(1);
        expect(results.filter((r) => r?.rotatedAt === NOW + 1)).toHaveLength(99);
        for (let i = 0; i < 100; i++) {
          expect(await b.store.getRefreshToken(hash(`rt-n${i}`), NOW)).toEqual(i === winners[0] ? refresh(`rt-n${i}`) : undefined);
        }
      });
    });

    describe('grants', () => {
      /** Two grants of client-a (one approved by alice), one of client-b approved by bob. */
      async function threeGrants(): Promise<void> {
        await b.store.putCode(code('code-g1', { grantId: 'g1', approvedBy: alice, consumedAt: NOW }));
        await b.store.putTokens(access('at-g1', { grantId: 'g1', approvedBy: alice, issuedAt: NOW + 10 }), refresh('rt-g1', { grantId: 'g1', approvedBy: alice, issuedAt: NOW + 10 }));
        await b.store.putTokens(access('at-g2', { grantId: 'g2', issuedAt: NOW + 20 }), undefined);
        await b.store.putTokens(
          access('at-g3', { grantId: 'g3', clientId: 'client-b', approvedBy: bob, issuedAt: NOW + 30 }),
          refresh('rt-g3', { grantId: 'g3', clientId: 'client-b', approvedBy: bob, issuedAt: NOW + 30 }),
        );
      }

      it('listGrants summarizes the live grants oldest first, with who approved them', async () => {
        await threeGrants();
        // A rotated refresh token no longer makes its grant refreshable; an expired token counts for nothing.
        await b.store.putTokens(access('at-g1-old', { grantId: 'g1', approvedBy: alice, issuedAt: NOW, expiresAt: NOW + 5 }), refresh('rt-g1-old', { grantId: 'g1', approvedBy: alice, issuedAt: NOW, rotatedAt: NOW + 10 }));
        const grants = await b.store.listGrants(NOW + 100);
        expect(grants).toEqual([
          { grantId: 'g1', clientId: 'client-a', scopes: ['read'], resource: 'https://mcp.example.com/mcp', issuedAt: NOW + 10, expiresAt: NOW + 30 * DAY, accessTokens: 1, refreshable: true, approvedBy: alice },
          { grantId: 'g2', clientId: 'client-a', scopes: ['read'], resource: 'https://mcp.example.com/mcp', issuedAt: NOW + 20, expiresAt: NOW + HOUR, accessTokens: 1, refreshable: false },
          { grantId: 'g3', clientId: 'client-b', scopes: ['read'], resource: 'https://mcp.example.com/mcp', issuedAt: NOW + 30, expiresAt: NOW + 30 * DAY, accessTokens: 1, refreshable: true, approvedBy: bob },
        ]);
        expect((await b.store.listGrants(NOW + 100, { clientId: 'client-a' })).map((g) => g.grantId)).toEqual(['g1', 'g2']);
        expect((await b.store.listGrants(NOW + 100, { subject: 'bob-sub' })).map((g) => g.grantId)).toEqual(['g3']);
        expect(await b.store.listGrants(NOW + 100, { subject: 'bob-sub', clientId: 'client-a' })).toEqual([]);
        // Past the access tokens' hour, g2 is gone and g1, g3 live on their refresh tokens.
        expect((await b.store.listGrants(NOW + HOUR)).map((g) => [g.grantId, g.accessTokens])).toEqual([
          ['g1', 0],
          ['g3', 0],
        ]);
      });

      it('revokeGrant deletes every code and token of one grant and counts them', async () => {
        await threeGrants();
        expect(await b.store.revokeGrant('g1')).toBe(3);
        expect(await b.store.revokeGrant('g1')).toBe(0);
        expect(await b.store.revokeGrant('unknown')).toBe(0);
        await reopen();
        expect(await b.store.getCode(hash('code-g1'), NOW)).toBeUndefined();
        expect(await b.store.getAccessToken(hash('at-g1'), NOW)).toBeUndefined();
        expect(await b.store.getRefreshToken(hash('rt-g1'), NOW)).toBeUndefined();
        expect((await b.store.listGrants(NOW)).map((g) => g.grantId)).toEqual(['g2', 'g3']);
      });

      it('revokeGrantsBySubject deletes every code and token that subject approved, nothing else', async () => {
        await threeGrants();
        expect(await b.store.revokeGrantsBySubject('alice-sub')).toBe(3);
        expect(await b.store.revokeGrantsBySubject('alice-sub')).toBe(0);
        expect(await b.store.revokeGrantsBySubject('nobody')).toBe(0);
        await reopen();
        expect((await b.store.listGrants(NOW)).map((g) => g.grantId)).toEqual(['g2', 'g3']);
      });
    });

    describe('housekeeping', () => {
      it('counts live clients, pending codes and live tokens', async () => {
        await b.store.putClient(client('client-a'));
        await b.store.putCode(code('pending'));
        await b.store.putCode(code('used', { consumedAt: NOW }));
        await b.store.putTokens(access('at-1'), refresh('rt-1'));
        await b.store.putTokens(access('at-2', { expiresAt: NOW + 5 }), refresh('rt-2', { rotatedAt: NOW }));
        expect(await b.store.counts(NOW + 10)).toEqual({ clients: 1, codes: 1, accessTokens: 1, refreshTokens: 1 });
        expect(await b.store.counts(NOW + 10 * MINUTE)).toEqual({ clients: 1, codes: 0, accessTokens: 1, refreshTokens: 1 });
      });

      it('deleteExpired removes and counts what expired, never a client, and expired key-value entries go too', async () => {
        await b.store.putClient(client('client-a'));
        await b.store.putCode(code('c-old', { expiresAt: NOW + 5 }));
        await b.store.putCode(code('c-live'));
        await b.store.putTokens(access('at-old', { expiresAt: NOW + 5 }), refresh('rt-old', { expiresAt: NOW + 5 }));
        await b.store.putTokens(access('at-live'), refresh('rt-live'));
        await b.kv.put('ns', 'old', 'v', NOW + 5);
        await b.kv.put('ns', 'forever', 'v', null);
        expect(await b.store.deleteExpired(NOW + 5)).toEqual({ codes: 1, accessTokens: 1, refreshTokens: 1 });
        expect(await b.store.deleteExpired(NOW + 5)).toEqual({ codes: 0, accessTokens: 0, refreshTokens: 0 });
        // Deleted, not merely hidden: an instant before their expiry they are gone too.
        expect(await b.store.getCode(hash('c-old'), NOW)).toBeUndefined();
        expect(await b.store.getAccessToken(hash('at-old'), NOW)).toBeUndefined();
        expect(await b.kv.get('ns', 'old', NOW)).toBeUndefined();
        expect(await b.kv.get('ns', 'forever', NOW + 100 * DAY)).toBe('v');
        expect(await b.store.getClient('client-a')).toBeDefined();
        expect(await b.store.getCode(hash('c-live'), NOW)).toBeDefined();
        expect(await b.store.getRefreshToken(hash('rt-live'), NOW)).toBeDefined();
      });

      it('keeps everything acknowledged across a clean stop and start', async () => {
        await b.store.putClient(client('client-a', NOW, { clientSecretHash: hash('s') }));
        await b.store.putCode(code('c1', { approvedBy: alice }));
        await b.store.putTokens(access('at', { approvedBy: alice }), refresh('rt', { approvedBy: alice }));
        await b.kv.put('sessions', 's1', '{"subject":"alice-sub"}', NOW + HOUR);
        await b.audit.append({ at: NOW, type: 'client.registered', actor: 'system', clientId: 'client-a', clientName: 'name of client-a', ip: '127.0.0.1' });
        const key = await b.consentKey();
        await reopen();
        expect(await b.store.getClient('client-a')).toEqual(client('client-a', NOW, { clientSecretHash: hash('s') }));
        expect(await b.store.getCode(hash('c1'), NOW)).toEqual(code('c1', { approvedBy: alice }));
        expect(await b.store.getAccessToken(hash('at'), NOW)).toEqual(access('at', { approvedBy: alice }));
        expect(await b.store.getRefreshToken(hash('rt'), NOW)).toEqual(refresh('rt', { approvedBy: alice }));
        expect(await b.kv.get('sessions', 's1', NOW)).toBe('{"subject":"alice-sub"}');
        expect(await b.audit.list({ limit: 10 })).toEqual([{ at: NOW, type: 'client.registered', actor: 'system', clientId: 'client-a', clientName: 'name of client-a', ip: '127.0.0.1' }]);
        expect((await b.consentKey()).equals(key)).toBe(true);
      });
    });

    describe('key-value entries', () => {
      it('put, get, list and delete, each namespace apart; null never expires', async () => {
        await b.kv.put('a', 'k2', 'v2', null);
        await b.kv.put('a', 'k1', 'v1', NOW + MINUTE);
        await b.kv.put('b', 'k1', 'other', null);
        await b.kv.put('a', 'k2', 'v2b', null);
        expect(await b.kv.get('a', 'k1', NOW)).toBe('v1');
        expect(await b.kv.get('a', 'k2', NOW + 1000 * DAY)).toBe('v2b');
        expect(await b.kv.get('b', 'k1', NOW)).toBe('other');
        expect(await b.kv.get('a', 'none', NOW)).toBeUndefined();
        expect(await b.kv.list('a', NOW)).toEqual([
          { key: 'k1', value: 'v1', expiresAt: NOW + MINUTE },
          { key: 'k2', value: 'v2b', expiresAt: null },
        ]);
        expect(await b.kv.delete('a', 'k2')).toBe(true);
        expect(await b.kv.delete('a', 'k2')).toBe(false);
        expect(await b.kv.list('a', NOW)).toEqual([{ key: 'k1', value: 'v1', expiresAt: NOW + MINUTE }]);
        expect(await b.kv.list('empty', NOW)).toEqual([]);
      });

      it('never returns an expired entry, from any read', async () => {
        await b.kv.put('a', 'k', 'v', NOW + MINUTE);
        expect(await b.kv.get('a', 'k', NOW + MINUTE - 1)).toBe('v');
        expect(await b.kv.get('a', 'k', NOW + MINUTE)).toBeUndefined();
        expect(await b.kv.list('a', NOW + MINUTE)).toEqual([]);
        expect(await b.kv.take('a', 'k', NOW + MINUTE)).toBeUndefined();
        // Still there for an earlier instant: expiry is judged at read time, not by deletion.
        expect(await b.kv.get('a', 'k', NOW)).toBe('v');
      });

      it('putIfAbsent stores only where no live entry is', async () => {
        expect(await b.kv.putIfAbsent('forms', 'f1', 'first', NOW + MINUTE, NOW)).toBe(true);
        expect(await b.kv.putIfAbsent('forms', 'f1', 'second', NOW + MINUTE, NOW + 1)).toBe(false);
        expect(await b.kv.get('forms', 'f1', NOW + 1)).toBe('first');
        // Once expired, the key is free again.
        expect(await b.kv.putIfAbsent('forms', 'f1', 'third', null, NOW + MINUTE)).toBe(true);
        expect(await b.kv.get('forms', 'f1', NOW + 10 * DAY)).toBe('third');
      });

      it('of 50 concurrent putIfAbsent calls exactly one stores, and of 50 takes exactly one gets the value', async () => {
        const instances = h.openPeer ? [b, await h.openPeer()] : [b];
        const at = (i: number): Backend => instances[i % instances.length] as Backend;
        const stored = await Promise.all(Array.from({ length: 50 }, (_, i) => at(i).kv.putIfAbsent('once', 'k', `v${i}`, NOW + HOUR, NOW)));
        expect(stored.filter(Boolean)).toHaveLength(1);
        const value = `v${stored.indexOf(true)}`;
        const taken = await Promise.all(Array.from({ length: 50 }, (_, i) => at(i).kv.take('once', 'k', NOW + 1)));
        expect(taken.filter((t) => t !== undefined)).toEqual([value]);
        expect(await b.kv.get('once', 'k', NOW + 1)).toBeUndefined();
      });
    });

    describe('counters', () => {
      it('count within a fixed window and start afresh once it closes', async () => {
        expect(await b.counters.get('pin:global', NOW)).toBeUndefined();
        expect(await b.counters.increment('pin:global', HOUR, NOW)).toEqual({ count: 1, resetAt: NOW + HOUR });
        expect(await b.counters.increment('pin:global', HOUR, NOW + 10)).toEqual({ count: 2, resetAt: NOW + HOUR });
        expect(await b.counters.get('pin:global', NOW + HOUR - 1)).toEqual({ count: 2, resetAt: NOW + HOUR });
        expect(await b.counters.get('pin:global', NOW + HOUR)).toBeUndefined();
        expect(await b.counters.increment('pin:global', HOUR, NOW + HOUR)).toEqual({ count: 1, resetAt: NOW + 2 * HOUR });
      });

      it('decrement never goes below zero and touches no closed window', async () => {
        await b.counters.increment('k', MINUTE, NOW);
        await b.counters.decrement('k', NOW + 1);
        await b.counters.decrement('k', NOW + 2);
        expect(await b.counters.get('k', NOW + 3)).toEqual({ count: 0, resetAt: NOW + MINUTE });
        await b.counters.decrement('none', NOW);
        expect(await b.counters.get('none', NOW)).toBeUndefined();
        await b.counters.increment('k', MINUTE, NOW + 4);
        await b.counters.decrement('k', NOW + MINUTE);
        expect(await b.counters.get('k', NOW + MINUTE - 1)).toEqual({ count: 1, resetAt: NOW + MINUTE });
      });

      it('reset deletes every counter under a prefix and counts them', async () => {
        for (const key of ['rl:token:1.2.3.4', 'rl:token:5.6.7.8', 'rl:register:1.2.3.4', 'pin:global']) await b.counters.increment(key, MINUTE, NOW);
        expect(await b.counters.reset('rl:token:')).toBe(2);
        expect(await b.counters.reset('rl:token:')).toBe(0);
        expect(await b.counters.get('rl:token:1.2.3.4', NOW)).toBeUndefined();
        expect(await b.counters.get('rl:register:1.2.3.4', NOW)).toEqual({ count: 1, resetAt: NOW + MINUTE });
        expect(await b.counters.get('pin:global', NOW)).toEqual({ count: 1, resetAt: NOW + MINUTE });
      });

      it('counts every one of 50 concurrent increments exactly once', async () => {
        const instances = h.openPeer ? [b, await h.openPeer()] : [b];
        const windows = await Promise.all(Array.from({ length: 50 }, (_, i) => (instances[i % instances.length] as Backend).counters.increment('burst', HOUR, NOW)));
        expect(windows.map((w) => w.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(await b.counters.get('burst', NOW)).toEqual({ count: 50, resetAt: NOW + HOUR });
      });
    });

    describe('audit log', () => {
      const events: AuditEvent[] = [
        { at: NOW - 2 * DAY, type: 'client.registered', actor: 'system', clientId: 'client-a', clientName: 'claudeai', ip: '203.0.113.7' },
        { at: NOW - DAY + HOUR, type: 'signin.failed', actor: 'pin', ip: '203.0.113.8', detail: { attempts: 3, locked: false } },
        { at: NOW + HOUR, type: 'grant.revoked', actor: 'alice-sub', subject: 'alice-sub', clientId: 'client-a', detail: { grantIds: ['g1', 'g2'], reason: 'owner' } },
        { at: NOW + HOUR, type: 'grant.revoked', actor: 'cli', subject: 'bob-sub', clientId: 'client-b' },
      ];

      it('lists newest first, filtered, up to the limit', async () => {
        for (const e of events) await b.audit.append(e);
        expect(await b.audit.list({ limit: 10 })).toEqual([events[3], events[2], events[1], events[0]]);
        expect(await b.audit.list({ limit: 2 })).toEqual([events[3], events[2]]);
        expect(await b.audit.list({ limit: 10, since: NOW - DAY + HOUR })).toEqual([events[3], events[2], events[1]]);
        expect(await b.audit.list({ limit: 10, until: NOW + HOUR })).toEqual([events[1], events[0]]);
        expect(await b.audit.list({ limit: 10, subject: 'alice-sub' })).toEqual([events[2]]);
        expect(await b.audit.list({ limit: 10, clientId: 'client-a' })).toEqual([events[2], events[0]]);
        expect(await b.audit.list({ limit: 10, type: 'grant.revoked', clientId: 'client-b' })).toEqual([events[3]]);
      });

      it('pages with offset and limit, newest first, across days', async () => {
        for (const e of events) await b.audit.append(e);
        expect(await b.audit.list({ limit: 2, offset: 0 })).toEqual([events[3], events[2]]);
        expect(await b.audit.list({ limit: 2, offset: 2 })).toEqual([events[1], events[0]]);
        expect(await b.audit.list({ limit: 2, offset: 3 })).toEqual([events[0]]);
        expect(await b.audit.list({ limit: 2, offset: 4 })).toEqual([]);
        expect(await b.audit.list({ limit: 1, offset: 1, clientId: 'client-a' })).toEqual([events[0]]);
      });

      it('keeps concurrent appends, each once', async () => {
        await Promise.all(Array.from({ length: 40 }, (_, i) => b.audit.append({ at: NOW + i, type: 'token.issued', clientId: `c${i}` })));
        const listed = await b.audit.list({ limit: 100 });
        expect(listed.map((e) => e.clientId)).toEqual(Array.from({ length: 40 }, (_, i) => `c${39 - i}`));
      });

      it('prune deletes the events before a day boundary and counts them', async () => {
        for (const e of events) await b.audit.append(e);
        expect(await b.audit.prune(NOW)).toBe(2);
        expect(await b.audit.prune(NOW)).toBe(0);
        await reopen();
        expect(await b.audit.list({ limit: 10 })).toEqual([events[3], events[2]]);
      });
    });

    describe('consent key', () => {
      it('is at least 32 bytes, created once, and the same for every instance and after a restart', async () => {
        const key = await b.consentKey();
        expect(key.length).toBeGreaterThanOrEqual(32);
        expect((await b.consentKey()).equals(key)).toBe(true);
        if (h.openPeer) expect((await (await h.openPeer()).consentKey()).equals(key)).toBe(true);
        await reopen();
        expect((await b.consentKey()).equals(key)).toBe(true);
      });
    });

    describe('when the storage fails', () => {
      (options.outage ? it : it.skip)('health says why, changes are refused as unavailable, and service resumes by itself with nothing acknowledged lost', async () => {
        await b.store.putClient(client('before'));
        await b.kv.put('ns', 'before', 'v', null);
        expect(await b.health()).toMatchObject({ ok: true });

        const heal = await h.breakStorage(b);
        await expect(b.store.putClient(client('during'))).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(b.store.putTokens(access('at-during'), refresh('rt-during'))).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(b.kv.put('ns', 'during', 'v', null)).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(b.audit.append({ at: NOW, type: 'during' })).rejects.toBeInstanceOf(StoreUnavailableError);
        // Once a change has failed (the files notice a sick disk only when they write), health says why.
        const health = await b.health();
        expect(health.ok).toBe(false);
        expect(health.error).toEqual(expect.any(String));

        await heal();
        expect(await b.health()).toMatchObject({ ok: true });
        await b.store.putClient(client('after'));
        await reopen();
        expect(await b.store.getClient('before')).toBeDefined();
        expect(await b.store.getClient('after')).toBeDefined();
        expect(await b.store.getClient('during')).toBeUndefined();
        expect(await b.store.getAccessToken(hash('at-during'), NOW)).toBeUndefined();
        expect(await b.kv.get('ns', 'before', NOW)).toBe('v');
        expect(await b.kv.get('ns', 'during', NOW)).toBeUndefined();
        expect(await b.audit.list({ limit: 10, type: 'during' })).toEqual([]);
      });
    });
  });
}

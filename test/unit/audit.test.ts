import * as events from '../../src/audit/audit-events.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { describeAuditEvent } from '../../src/audit/audit-text.js';
import { auditEventSchema } from '../../src/store/records.js';
import { FileAuditLog } from '../../src/store/file/audit-log.js';
import { nodeFsOps } from '../../src/store/file/atomic-file.js';
import { FakeClock, removeDir, silentLogger, tempDir } from '../helpers/unit-context.js';

/**
 * The audit events: each constructor makes an event the store accepts, with the fields its
 * type promises and no undefined left in it; the log stamps the time and keeps events past
 * retention only; each event reads as one sentence for people.
 */
const alice = { subject: 'oidc:accounts.google.com:1098', email: 'alice@example.com' };

const all = [
  events.clientRegistered({ clientId: 'c1', clientName: 'claudeai', ip: '203.0.113.7', authMethod: 'none' }),
  events.clientDeleted({ clientId: 'c1', clientName: 'claudeai', actor: 'pin', grants: 2 }),
  events.clientsDeleted({ count: 3, actor: 'system', reason: 'unused' }),
  events.signInSucceeded({ person: alice, provider: 'oidc', purpose: 'consent', ip: '203.0.113.7', clientId: 'c1' }),
  events.signInFailed({ provider: 'github', purpose: 'admin', reason: 'not-allowed', person: { subject: 'github:1', email: undefined }, ip: '203.0.113.8' }),
  events.consentApproved({ person: alice, clientId: 'c1', clientName: 'claudeai', scopes: ['mcp'], resource: 'https://mcp.example.com/mcp', ip: '203.0.113.7', grantId: 'g1' }),
  events.consentDenied({ person: undefined, clientId: 'c1', scopes: ['mcp'], resource: 'https://mcp.example.com/mcp', ip: undefined }),
  events.pinFailed({ purpose: 'consent', ip: '203.0.113.9', clientId: 'c1', knownDevice: false, formClosed: false }),
  events.pinLockedOut({ purpose: 'admin', ip: '203.0.113.9', knownDevice: false, until: Date.UTC(2026, 0, 1, 13) }),
  events.grantRevoked({ actor: 'system', reason: 'allow-list-removal', clientId: 'c1', grantId: 'g1', person: alice }),
  events.personRevoked({ actor: 'cli', reason: 'owner', person: alice, records: 4 }),
  events.configurationLoaded({ version: '0.1.0', issuer: 'https://auth.example.com', signIn: ['oidc', 'pin'], providers: ['oidc: https://accounts.google.com'], backend: 'files', allowListEntries: 2, owners: 1 }),
  events.configurationReloaded({ added: ['notes'], removed: [], changed: ['files', 'web'] }),
];

describe('audit event constructors', () => {
  it('make events the store accepts, without undefined fields', () => {
    for (const entry of all) {
      const event = { at: 1, ...entry };
      expect(auditEventSchema.safeParse(event).success).toBe(true);
      expect(JSON.stringify(event)).toBe(JSON.stringify(JSON.parse(JSON.stringify(event))));
      expect(Object.values(event as Record<string, unknown>).includes(undefined)).toBe(false);
      expect(Object.values((event.detail ?? {}) as Record<string, unknown>).includes(undefined)).toBe(false);
    }
  });

  it('name who did it: the person, pin, cli, client, anyone or system', () => {
    expect(all.map((e) => e.actor)).toEqual(['anyone', 'pin', 'system', alice.subject, 'github:1', alice.subject, 'anyone', 'anyone', 'anyone', 'system', 'cli', 'system', 'system']);
  });

  it('read as one sentence each', () => {
    const text = all.map((e) => describeAuditEvent({ at: 0, ...e }));
    expect(text).toEqual([
      '"claudeai" registered (none client)',
      'someone with the PIN deleted "claudeai" and its 2 live grant(s)',
      '3 unused client(s) deleted by Latchkey',
      'alice@example.com signed in with oidc (consent)',
      'sign-in with github refused: not-allowed',
      'alice@example.com approved "claudeai" for mcp on https://mcp.example.com/mcp',
      'someone denied c1 (mcp on https://mcp.example.com/mcp)',
      'wrong PIN on the consent page of c1',
      'PIN entry paused until 2026-01-01T13:00:00.000Z after too many wrong PINs (owner’s page)',
      'a grant of c1 revoked because its approver is no longer on the allow-lists (approved by alice@example.com)',
      'every grant approved by alice@example.com revoked by the owner (4 codes and tokens)',
      'Latchkey 0.1.0 started: sign-in by oidc pin, files backend',
      'gateway file reloaded: added notes; changed files web',
    ]);
  });
});

describe('a client evicted at the cap', () => {
  it('is a client deletion by Latchkey, with the reason', () => {
    const entry = events.clientsDeleted({ count: 1, actor: 'system', reason: 'cap' });
    expect(entry).toEqual({ type: 'client.deleted', actor: 'system', detail: { reason: 'cap', count: 1 } });
    expect(describeAuditEvent({ at: 0, ...entry })).toBe('1 never-approved client(s) deleted by Latchkey to make room under OAUTH_MAX_CLIENTS');
  });
});

describe('AuditLog', () => {
  it('stamps events with the clock and prunes past the retention', async () => {
    const dir = await tempDir();
    const store = new FileAuditLog(dir, nodeFsOps, silentLogger());
    try {
      const clock = new FakeClock(Date.UTC(2026, 0, 1, 12));
      const log = new AuditLog(store, clock);
      await log.record(events.pinFailed({ purpose: 'consent', ip: '203.0.113.9', knownDevice: false, formClosed: false }));
      clock.advance(3 * 86_400_000);
      await log.record(events.clientsDeleted({ count: 1, actor: 'system', reason: 'unused' }));
      expect((await log.list({ limit: 10 })).map((e) => e.at)).toEqual([Date.UTC(2026, 0, 4, 12), Date.UTC(2026, 0, 1, 12)]);
      expect(await log.prune(2 * 86_400_000)).toBe(1);
      expect((await log.list({ limit: 10 })).map((e) => e.type)).toEqual(['client.deleted']);
    } finally {
      await store.close();
      await removeDir(dir);
    }
  });
});

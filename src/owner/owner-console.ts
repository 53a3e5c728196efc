import type { Logger } from 'pino';
import { clientDeleted, clientsDeleted, grantRevoked, personRevoked, type AuditActor } from '../audit/audit-events.js';
import type { AuditLog } from '../audit/audit-log.js';
import { auditWho, describeAuditEvent } from '../audit/audit-text.js';
import type { Clock } from '../clock.js';
import { approverLabel } from '../oauth/approver.js';
import { isClientIdMetadataUrl } from '../oauth/client-metadata-document.js';
import { describeRedirect } from '../oauth/consent/outcomes.js';
import { safeDisplayText } from '../oauth/display-text.js';
import type { OAuthObserver } from '../oauth/observer.js';
import type { Approver, AuditEvent, ClientRecord, GrantSummary, Store, StoreCounts, StoreHealth } from '../store/types.js';

/**
 * What the owner sees and does, whatever the way in (the owner's page today, the `latchkey`
 * command talking to the daemon): the overview of clients and live grants, revoking a grant,
 * deleting a client. Decisions and store calls live here; the routes only render.
 */

/** One app as the owner sees it: a registered client, or a metadata-document client known by its grants. */
export interface ClientView {
  id: string;
  name: string;
  /** Where it returns to after approval: the hosts of its redirect URIs, which the owner can judge. */
  hosts: string[];
  /** Registered (undefined for a metadata-document client, which is never stored). */
  registeredAt: number | undefined;
  lastUsedAt: number | undefined;
  /** The owner approved it at least once. */
  approved: boolean;
  grants: GrantSummary[];
}

/** Clients on one page of the owner's page. */
export const CLIENTS_PER_PAGE = 50;

export interface OverviewQuery {
  /** From 0. */
  page?: number;
  pageSize?: number;
  /** Only clients the owner never approved. */
  unapprovedOnly?: boolean;
}

/**
 * One MCP server behind the gateway, as the owner sees it. The owner's layer does not import
 * the gateway: the daemon hands it anything with this shape (the gateway's `status()`).
 */
export interface GatewayServerView {
  name: string;
  kind: 'stdio' | 'http';
  /** The connector URL: OAUTH_ISSUER_URL + the server's path, also its resource. */
  resource: string;
  /** Live MCP sessions the gateway holds (stdio servers; an HTTP server keeps its own). */
  sessions: number;
  /** Live child processes (stdio servers). */
  processes: number;
  lastError?: { at: number; message: string };
}

export interface GatewayStatusSource {
  status(): GatewayServerView[];
}

export interface Overview {
  counts: StoreCounts;
  liveGrants: number;
  uptimeMs: number;
  version: string;
  health: StoreHealth;
  /** One page of clients, newest first. */
  clients: ClientView[];
  page: number;
  pages: number;
  totalClients: number;
  unapprovedClients: number;
  /** The gateway's servers, when OAUTH_GATEWAY_CONFIG is set; undefined without a gateway. */
  gateway: GatewayServerView[] | undefined;
}

/** A live grant with the name of its app, for lists of grants across apps. */
export interface NamedGrant extends GrantSummary {
  clientName: string;
}

/** A person who approved grants after signing in with a provider, with their live grants. */
export interface PersonView {
  subject: string;
  email?: string | undefined;
  name?: string | undefined;
  githubLogin?: string | undefined;
  grants: NamedGrant[];
}

/** One audit event as people read it. */
export interface AuditLine {
  event: AuditEvent;
  who: string;
  text: string;
}

/** Audit events on one page of the owner's page. */
export const AUDIT_EVENTS_PER_PAGE = 50;

export interface AuditPageQuery {
  /** From 0. */
  page?: number;
  pageSize?: number;
  subject?: string;
  clientId?: string;
}

export interface OwnerConsoleDeps {
  store: Store;
  /** Every change the owner makes is recorded; the owner's page and `latchkey audit` read it. */
  audit: Pick<AuditLog, 'record' | 'list'>;
  clock: Clock;
  logger: Logger;
  version: string;
  startedAt: number;
  /** Lifts every PIN lockout (the PIN guard's unlock). */
  unlockPins: () => Promise<number>;
  /** Forgets every known browser (KnownDevices.forgetAll). */
  forgetDevices: () => Promise<number>;
  /** The backend's health, with what it kept aside. */
  health: () => Promise<StoreHealth>;
  /** The MCP gateway's live status, when one is configured. */
  gateway?: GatewayStatusSource | undefined;
  /** Hears the owner's revocations, for /metrics. */
  observer?: Pick<OAuthObserver, 'grantRevoked'>;
}

/** Where a client's redirect URIs lead: their hosts, or scheme, host and path for a native app's scheme. */
export function redirectHosts(client: ClientRecord): string[] {
  const hosts = new Set<string>();
  for (const uri of client.metadata.redirect_uris) {
    try {
      hosts.add(describeRedirect(new URL(uri)));
    } catch {
      hosts.add(uri);
    }
  }
  return [...hosts];
}

/** The host of a metadata-document client_id (an https URL), or the id itself. */
function hostOf(clientId: string): string {
  try {
    return new URL(clientId).host;
  } catch {
    return clientId;
  }
}

export class OwnerConsole {
  constructor(private readonly deps: OwnerConsoleDeps) {}

  /**
   * The owner's page: counts, health, and one page of clients (newest first: the connection
   * the owner just made is the one they look for), each with its live grants. A page, not all:
   * an open registration can mean thousands of clients.
   */
  async overview(query: OverviewQuery = {}): Promise<Overview> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const pageSize = query.pageSize ?? CLIENTS_PER_PAGE;
    const unapprovedOnly = query.unapprovedOnly ?? false;
    const [totalClients, unapprovedClients] = await Promise.all([store.clientCount(unapprovedOnly ? { unapprovedOnly } : undefined), store.clientCount({ unapprovedOnly: true })]);
    const pages = Math.max(1, Math.ceil(totalClients / pageSize));
    const page = Math.min(Math.max(0, Math.floor(query.page ?? 0)), pages - 1);
    const [clients, grants, counts, health] = await Promise.all([
      store.listClients({ newestFirst: true, offset: page * pageSize, limit: pageSize, unapprovedOnly }),
      store.listGrants(now),
      store.counts(now),
      this.deps.health(),
    ]);
    const views = this.clientViews(clients, grants, page === 0 && !unapprovedOnly);
    const gateway = this.deps.gateway?.status().map(({ name, kind, resource, sessions, processes, lastError }) => ({
      name,
      kind,
      resource,
      sessions,
      processes,
      ...(lastError ? { lastError } : {}),
    }));
    return { counts, liveGrants: grants.length, uptimeMs: now - this.deps.startedAt, version: this.deps.version, health, clients: views, page, pages, totalClients, unapprovedClients, gateway };
  }

  /** Every client, newest first, with its live grants: for the `latchkey` command. */
  async allClients(): Promise<ClientView[]> {
    const now = this.deps.clock.now();
    const [clients, grants] = await Promise.all([this.deps.store.listClients({ newestFirst: true }), this.deps.store.listGrants(now)]);
    return this.clientViews(clients, grants, true);
  }

  private clientViews(clients: ClientRecord[], grants: GrantSummary[], withDocumentClients: boolean): ClientView[] {
    const byClient = new Map<string, GrantSummary[]>();
    for (const g of grants) byClient.set(g.clientId, [...(byClient.get(g.clientId) ?? []), g]);
    const views: ClientView[] = clients.map((c) => ({
      id: c.clientId,
      name: c.metadata.client_name ? safeDisplayText(c.metadata.client_name) : 'Unnamed app',
      hosts: redirectHosts(c),
      registeredAt: c.issuedAt,
      lastUsedAt: c.lastUsedAt,
      approved: c.approvedAt !== undefined,
      grants: byClient.get(c.clientId) ?? [],
    }));
    if (!withDocumentClients) return views;
    // Clients known by a metadata document URL are never stored, only their grants: list them
    // too, so the owner can see and revoke every connection.
    return [
      ...views,
      ...[...byClient.keys()]
        .filter((id) => isClientIdMetadataUrl(id))
        .map((id) => ({ id, name: `App at ${hostOf(id)}`, hosts: [hostOf(id)], registeredAt: undefined, lastUsedAt: undefined, approved: true, grants: byClient.get(id) ?? [] })),
    ];
  }

  /** Deletes every client never approved (and never used), however recent: the owner's sweep after a registration flood. */
  async deleteUnapprovedClients(actor: AuditActor): Promise<number> {
    const deleted = await this.deps.store.deleteUnusedClients(this.deps.clock.now() + 1);
    if (deleted > 0) {
      await this.deps.audit.record(clientsDeleted({ count: deleted, actor, reason: 'never-approved' }));
      this.deps.logger.info({ deleted }, 'owner deleted every never-approved client');
    }
    return deleted;
  }

  /** A live grant and the name of its app, for a confirmation page. */
  async grant(grantId: string | undefined): Promise<{ grant: GrantSummary; clientName: string | undefined } | undefined> {
    if (!grantId) return undefined;
    const grant = (await this.deps.store.listGrants(this.deps.clock.now())).find((g) => g.grantId === grantId);
    if (!grant) return undefined;
    const client = await this.deps.store.getClient(grant.clientId);
    return { grant, clientName: client?.metadata.client_name && safeDisplayText(client.metadata.client_name) };
  }

  /** A registered client and how many live grants it has, for a confirmation page. */
  async client(clientId: string | undefined): Promise<{ client: ClientRecord; liveGrants: number } | undefined> {
    if (!clientId) return undefined;
    const client = await this.deps.store.getClient(clientId);
    if (!client) return undefined;
    const grants = await this.deps.store.listGrants(this.deps.clock.now());
    return { client, liveGrants: grants.filter((g) => g.clientId === clientId).length };
  }

  /** Revokes a grant: every code and token of it. False if it was already gone. */
  async revokeGrant(grantId: string | undefined, actor: AuditActor): Promise<boolean> {
    const found = await this.grant(grantId);
    if (!found) return false;
    await this.revoke({ ...found.grant, clientName: found.clientName }, actor, 'owner');
    return true;
  }

  private async revoke(grant: GrantSummary & { clientName?: string | undefined }, actor: AuditActor, reason: 'owner' | 'person'): Promise<void> {
    const removed = await this.deps.store.revokeGrant(grant.grantId);
    this.deps.observer?.grantRevoked(reason);
    await this.deps.audit.record(grantRevoked({ actor, reason, clientId: grant.clientId, clientName: grant.clientName, grantId: grant.grantId, person: grant.approvedBy }));
    this.deps.logger.info({ clientId: grant.clientId, removed, by: reason }, `${reason} revoked a grant`);
  }

  /** Deletes a client and everything issued to it. False if it was already gone. */
  async deleteClient(clientId: string | undefined, actor: AuditActor): Promise<boolean> {
    if (!clientId) return false;
    const found = await this.client(clientId);
    if (!(await this.deps.store.deleteClient(clientId))) return false;
    await this.deps.audit.record(clientDeleted({ clientId, clientName: found?.client.metadata.client_name, actor, grants: found?.liveGrants ?? 0 }));
    this.deps.logger.info({ clientId }, 'owner deleted a client');
    return true;
  }

  /** Revokes every live grant of a client (the client stays registered). Returns how many. */
  async revokeClientGrants(clientId: string, actor: AuditActor): Promise<number> {
    const grants = await this.deps.store.listGrants(this.deps.clock.now(), { clientId });
    const clientName = (await this.deps.store.getClient(clientId))?.metadata.client_name;
    for (const g of grants) await this.revoke({ ...g, clientName }, actor, 'owner');
    return grants.length;
  }

  /**
   * The people who approved live grants after signing in with a provider, each with those
   * grants, ordered by e-mail (or name): "who connected what" at a glance.
   */
  async people(): Promise<PersonView[]> {
    const grants = await this.named((await this.deps.store.listGrants(this.deps.clock.now())).filter((g) => g.approvedBy !== undefined));
    const bySubject = new Map<string, PersonView>();
    for (const g of grants) {
      const who = g.approvedBy as Approver;
      const person = bySubject.get(who.subject) ?? { subject: who.subject, email: who.email, name: who.name, githubLogin: who.githubLogin, grants: [] };
      person.grants.push(g);
      bySubject.set(who.subject, person);
    }
    const label = (p: PersonView): string => approverLabel(p).toLowerCase();
    return [...bySubject.values()].sort((a, b) => label(a).localeCompare(label(b)));
  }

  /** One person's live grants (for a confirmation page, or their own page). Undefined if they have none. */
  async person(subject: string | undefined): Promise<PersonView | undefined> {
    if (!subject) return undefined;
    const grants = await this.named(await this.deps.store.listGrants(this.deps.clock.now(), { subject }));
    const who = grants[0]?.approvedBy;
    return who === undefined ? undefined : { subject, email: who.email, name: who.name, githubLogin: who.githubLogin, grants };
  }

  /**
   * Revokes everything one person approved, at once: every code and token of every grant.
   * `reason` says whether the owner or the person did it. Returns how many records went.
   */
  async revokePerson(subject: string, actor: AuditActor, reason: 'owner' | 'person'): Promise<number> {
    const found = await this.person(subject);
    const records = await this.deps.store.revokeGrantsBySubject(subject);
    if (records > 0) {
      await this.deps.audit.record(personRevoked({ actor, reason, person: { subject, email: found?.email }, records }));
      this.deps.logger.info({ subject, records, by: reason }, 'every grant of a person revoked');
    }
    return records;
  }

  /** A person revokes one of their own grants; a grant someone else approved is never touched. */
  async revokeOwnGrant(subject: string, grantId: string | undefined): Promise<boolean> {
    const grant = (await this.deps.store.listGrants(this.deps.clock.now(), { subject })).find((g) => g.grantId === grantId);
    if (grant === undefined) return false;
    await this.revoke({ ...grant, clientName: (await this.deps.store.getClient(grant.clientId))?.metadata.client_name }, subject, 'person');
    return true;
  }

  /**
   * One page of the audit log, newest first, optionally for one person or one app. One event
   * more than the page is read, to know whether an older page exists.
   */
  async auditPage(query: AuditPageQuery = {}): Promise<{ lines: AuditLine[]; page: number; hasOlder: boolean }> {
    const pageSize = query.pageSize ?? AUDIT_EVENTS_PER_PAGE;
    const page = Math.max(0, Math.floor(query.page ?? 0));
    const events = await this.deps.audit.list({
      offset: page * pageSize,
      limit: pageSize + 1,
      ...(query.subject !== undefined ? { subject: query.subject } : {}),
      ...(query.clientId !== undefined ? { clientId: query.clientId } : {}),
    });
    return { lines: events.slice(0, pageSize).map(auditLine), page, hasOlder: events.length > pageSize };
  }

  /** Audit events since a time, newest first, for `latchkey audit`. */
  async auditSince(since: number | undefined, limit: number): Promise<AuditLine[]> {
    return (await this.deps.audit.list({ limit, ...(since !== undefined ? { since } : {}) })).map(auditLine);
  }

  private async named(grants: GrantSummary[]): Promise<NamedGrant[]> {
    const names = new Map<string, string>();
    for (const id of new Set(grants.map((g) => g.clientId))) {
      const client = await this.deps.store.getClient(id);
      names.set(id, client?.metadata.client_name ? safeDisplayText(client.metadata.client_name) : isClientIdMetadataUrl(id) ? `App at ${hostOf(id)}` : 'Unnamed app');
    }
    return grants.map((g) => ({ ...g, clientName: names.get(g.clientId) ?? 'Unnamed app' }));
  }

  /** Forgets every known browser: a copied device cookie stops working; each browser must enter the PIN once more. */
  async forgetDevices(): Promise<number> {
    const forgotten = await this.deps.forgetDevices();
    this.deps.logger.warn({ forgotten }, 'owner forgot every known browser');
    return forgotten;
  }

  /** Lifts every PIN lockout and page attempt count. Returns how many failures were forgotten. */
  async unlock(): Promise<number> {
    const cleared = await this.deps.unlockPins();
    this.deps.logger.warn({ cleared }, 'owner lifted the PIN lockouts');
    return cleared;
  }
}

const auditLine = (event: AuditEvent): AuditLine => ({ event, who: auditWho(event), text: describeAuditEvent(event) });

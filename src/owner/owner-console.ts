import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { safeDisplayText } from '../oauth/display-text.js';
import type { OAuthObserver } from '../oauth/observer.js';
import type { ClientRecord, GrantSummary, Store, StoreCounts, StoreHealth } from '../store/types.js';

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
  grants: GrantSummary[];
}

export interface Overview {
  counts: StoreCounts;
  liveGrants: number;
  uptimeMs: number;
  version: string;
  health: StoreHealth;
  /** Newest first: the connection the owner just made is the one they look for. */
  clients: ClientView[];
}

export interface OwnerConsoleDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  version: string;
  startedAt: number;
  /** Lifts every PIN lockout (the PIN guard's unlock). */
  unlockPins: () => Promise<number>;
  /** Hears the owner's revocations, for /metrics. */
  observer?: Pick<OAuthObserver, 'grantRevoked'>;
}

/** The hosts of a client's redirect URIs, or the URI itself for a private-use scheme. */
export function redirectHosts(client: ClientRecord): string[] {
  const hosts = new Set<string>();
  for (const uri of client.metadata.redirect_uris) {
    try {
      hosts.add(new URL(uri).host || uri);
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

  async overview(): Promise<Overview> {
    const { store, clock } = this.deps;
    const now = clock.now();
    const [clients, grants, counts, health] = await Promise.all([store.listClients(), store.listGrants(now), store.counts(now), store.health()]);
    const byClient = new Map<string, GrantSummary[]>();
    for (const g of grants) byClient.set(g.clientId, [...(byClient.get(g.clientId) ?? []), g]);
    const stored = new Set(clients.map((c) => c.clientId));
    const views: ClientView[] = [
      ...clients.reverse().map((c) => ({
        id: c.clientId,
        name: c.metadata.client_name ? safeDisplayText(c.metadata.client_name) : 'Unnamed app',
        hosts: redirectHosts(c),
        registeredAt: c.issuedAt,
        lastUsedAt: c.lastUsedAt,
        grants: byClient.get(c.clientId) ?? [],
      })),
      // Clients known by a metadata document URL are never stored, only their grants: list
      // them too, so the owner can see and revoke every connection.
      ...[...byClient.keys()]
        .filter((id) => !stored.has(id))
        .map((id) => ({ id, name: `App at ${hostOf(id)}`, hosts: [hostOf(id)], registeredAt: undefined, lastUsedAt: undefined, grants: byClient.get(id) ?? [] })),
    ];
    return { counts, liveGrants: grants.length, uptimeMs: now - this.deps.startedAt, version: this.deps.version, health, clients: views };
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
  async revokeGrant(grantId: string | undefined): Promise<boolean> {
    const found = await this.grant(grantId);
    if (!found) return false;
    const removed = await this.deps.store.revokeGrant(found.grant.grantId);
    this.deps.observer?.grantRevoked('owner');
    this.deps.logger.info({ clientId: found.grant.clientId, removed }, 'owner revoked a grant');
    return true;
  }

  /** Deletes a client and everything issued to it. False if it was already gone. */
  async deleteClient(clientId: string | undefined): Promise<boolean> {
    if (!clientId || !(await this.deps.store.deleteClient(clientId))) return false;
    this.deps.logger.info({ clientId }, 'owner deleted a client');
    return true;
  }

  /** Revokes every live grant of a client (the client stays registered). Returns how many. */
  async revokeClientGrants(clientId: string): Promise<number> {
    const grants = (await this.deps.store.listGrants(this.deps.clock.now())).filter((g) => g.clientId === clientId);
    for (const g of grants) {
      await this.deps.store.revokeGrant(g.grantId);
      this.deps.observer?.grantRevoked('owner');
    }
    if (grants.length > 0) this.deps.logger.info({ clientId, grants: grants.length }, 'owner revoked every grant of a client');
    return grants.length;
  }

  /** Lifts every PIN lockout and page attempt count. Returns how many failures were forgotten. */
  async unlock(): Promise<number> {
    const cleared = await this.deps.unlockPins();
    this.deps.logger.warn({ cleared }, 'owner lifted the PIN lockouts');
    return cleared;
  }
}

import { PROTECTED_RESOURCE_WELL_KNOWN, protectedResourceMetadata, protectedResourceMetadataUrl } from '../resource-server/protected-resource-metadata.js';
import type { GatewayFile, GatewayServerConfig } from './config-file.js';
import type { ProtectedTarget } from './access-check.js';
import type { ServerHandler } from './server-handler.js';
import { toolPolicy, type ToolPolicy } from './tool-policy.js';

/** A server as the router sees it: its handler and what its bearer check and metadata say. */
export interface RoutedServer extends ProtectedTarget {
  handler: ServerHandler;
  /** Its `tools` rule, when it has one. */
  policy: ToolPolicy | undefined;
  /** The RFC 9728 document served at its metadata URL. */
  metadata: Record<string, unknown>;
}

export interface ReloadReport {
  added: string[];
  removed: string[];
  /** Restarted with the new settings: their sessions ended. */
  changed: string[];
  /** Kept as they were, live sessions included. */
  unchanged: string[];
}

const WELL_KNOWN = PROTECTED_RESOURCE_WELL_KNOWN;

/**
 * The servers the gateway serves right now, by path. Applying a new file keeps every server
 * whose settings did not change (with its sessions and processes) and replaces the others.
 */
export class ServerRegistry {
  private byName = new Map<string, { fingerprint: string; routed: RoutedServer }>();
  private paths = new Map<string, RoutedServer>();
  private metadataPaths = new Map<string, RoutedServer>();

  constructor(
    private readonly issuer: string,
    private readonly make: (config: GatewayServerConfig, policy: ToolPolicy | undefined) => ServerHandler,
  ) {}

  async apply(file: GatewayFile): Promise<ReloadReport> {
    const report: ReloadReport = { added: [], removed: [], changed: [], unchanged: [] };
    const next = new Map<string, { fingerprint: string; routed: RoutedServer }>();
    const retired: ServerHandler[] = [];
    for (const config of file.servers) {
      const fingerprint = JSON.stringify(config);
      const current = this.byName.get(config.name);
      if (current?.fingerprint === fingerprint) {
        next.set(config.name, current);
        report.unchanged.push(config.name);
        continue;
      }
      if (current) {
        retired.push(current.routed.handler);
        report.changed.push(config.name);
      } else {
        report.added.push(config.name);
      }
      next.set(config.name, { fingerprint, routed: this.route(config) });
    }
    for (const [name, entry] of this.byName) {
      if (!next.has(name)) {
        retired.push(entry.routed.handler);
        report.removed.push(name);
      }
    }
    this.byName = next;
    this.paths = new Map([...next.values()].map(({ routed }) => [routed.handler.config.path, routed]));
    this.metadataPaths = new Map([...next.values()].map(({ routed }) => [`${WELL_KNOWN}${routed.handler.config.path}`, routed]));
    await Promise.all(retired.map((handler) => handler.close()));
    return report;
  }

  private route(config: GatewayServerConfig): RoutedServer {
    const resource = `${this.issuer}${config.path}`;
    const policy = config.tools ? toolPolicy(config.tools) : undefined;
    return {
      handler: this.make(config, policy),
      policy,
      resource,
      scopes: config.scopes,
      metadataUrl: protectedResourceMetadataUrl(resource),
      metadata: protectedResourceMetadata({ resource, issuer: this.issuer, scopesSupported: config.scopes, resourceName: config.name }),
    };
  }

  byPath(path: string): RoutedServer | undefined {
    return this.paths.get(path);
  }

  byMetadataPath(path: string): RoutedServer | undefined {
    return this.metadataPaths.get(path);
  }

  servers(): RoutedServer[] {
    return [...this.byName.values()].map(({ routed }) => routed);
  }

  async close(): Promise<void> {
    const handlers = this.servers().map((s) => s.handler);
    this.byName = new Map();
    this.paths = new Map();
    this.metadataPaths = new Map();
    await Promise.all(handlers.map((h) => h.close()));
  }
}

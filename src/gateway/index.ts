import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { loadGatewayFile, type GatewayFile } from './config-file.js';
import { httpUpstream } from './http-upstream.js';
import type { BaseEnv } from './process-group.js';
import { gatewayHandler } from './router.js';
import type { HandlerStatus } from './server-handler.js';
import { ServerRegistry, type ReloadReport } from './server-registry.js';
import { stdioServer } from './stdio-sessions.js';
import type { AccessTokenVerifier } from './verified-token.js';

/**
 * The MCP gateway (issue 11): Latchkey serves the MCP servers of one Claude Desktop / Cursor
 * style file, each at its own path and each its own OAuth resource, so a connector pointed
 * at Latchkey reaches a stdio or HTTP MCP server that knows nothing of OAuth. This is the
 * one seam the rest of Latchkey uses.
 */

export { GatewayConfigError, loadGatewayFile } from './config-file.js';
export type { GatewayFile, GatewayServerConfig } from './config-file.js';
export { baseEnvOf, type BaseEnv } from './process-group.js';
export { probeHttpServer, probeStdioServer, type HttpProbe, type StdioProbe } from './server-probe.js';
export type { ReloadReport } from './server-registry.js';
export { storeTokenVerifier } from './token-verifier.js';
export type { AccessTokenVerifier, VerifiedToken } from './verified-token.js';

export interface GatewayOptions {
  /** A stdio session without requests for this long ends (default 15 min). */
  stdioIdleMs?: number;
  /** Live processes per stdio server (default 8); one more initialize gets 503. */
  maxProcessesPerServer?: number;
  /** How long an HTTP upstream may take to start answering (default 60 s); then 504. */
  upstreamTimeoutMs?: number;
}

export interface GatewayDeps {
  /** OAUTH_ISSUER_URL, verbatim: each server's resource is the issuer + its path. */
  issuer: string;
  /** The OAUTH_GATEWAY_CONFIG path. */
  configFile: string;
  /** OAUTH_VALID_SCOPES: a server's `scopes` must be among them. */
  validScopes: readonly string[];
  /** OAUTH_DEFAULT_SCOPES: what a server without `scopes` requires. */
  defaultScopes: readonly string[];
  logger: Logger;
  clock: { now(): number };
  /** Checks a bearer token in process against the store (no introspection round trip). */
  verifyAccessToken: AccessTokenVerifier;
  /** What children get besides their configured env: only PATH and HOME of Latchkey's env. */
  baseEnv: BaseEnv;
  options?: GatewayOptions;
}

export interface GatewayServerStatus extends HandlerStatus {
  name: string;
  kind: 'stdio' | 'http';
  path: string;
  resource: string;
}

export interface Gateway {
  /**
   * Serves every server path and its protected resource metadata, and passes anything else
   * on; mount it before Latchkey's own routes, whose paths no server may take.
   */
  handler: RequestHandler;
  /** The resource URL (issuer + path) of each server, for the audiences tokens can be issued for. */
  resources(): string[];
  /**
   * Re-reads the file (SIGHUP). Servers whose settings did not change keep their sessions.
   * A bad file rejects with a GatewayConfigError and changes nothing.
   */
  reload(): Promise<ReloadReport>;
  /** For /admin: each server, its live sessions and processes, and its last error. */
  status(): GatewayServerStatus[];
  /** Ends every child process (whole process group) and every proxied request. */
  close(): Promise<void>;
}

const DEFAULT_IDLE_MS = 15 * 60_000;
const DEFAULT_MAX_PROCESSES = 8;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;

/** Reads the file and starts serving it; a bad file throws a one-line GatewayConfigError. */
export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const idleMs = deps.options?.stdioIdleMs ?? DEFAULT_IDLE_MS;
  const log = deps.logger.child({ component: 'gateway' });
  const registry = new ServerRegistry(deps.issuer, (config, policy) =>
    config.kind === 'stdio'
      ? stdioServer({
          config,
          policy,
          baseEnv: deps.baseEnv,
          idleMs,
          // Idleness is judged by the clock; this is only how often it is looked at.
          idleCheckMs: Math.min(30_000, idleMs / 4),
          maxProcesses: deps.options?.maxProcessesPerServer ?? DEFAULT_MAX_PROCESSES,
          logger: deps.logger,
          clock: deps.clock,
        })
      : httpUpstream({ config, policy, timeoutMs: deps.options?.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS, logger: deps.logger, clock: deps.clock }),
  );

  const read = (): Promise<GatewayFile> => loadGatewayFile(deps.configFile, deps);
  const announce = (file: GatewayFile): void => {
    if (file.ignoredKeys.length > 0) log.info(`gateway: ignoring keys Latchkey does not use: ${file.ignoredKeys.join(', ')}`);
    if (file.disabled.length > 0) log.info(`gateway: not serving servers marked disabled: ${file.disabled.join(', ')}`);
    const list = registry.servers().map((s) => `${s.handler.config.name} (${s.handler.config.kind}) at ${s.resource}`);
    log.info({ servers: registry.servers().map((s) => s.handler.config.name) }, `gateway serving ${list.length} MCP server(s)${list.length > 0 ? `: ${list.join(', ')}` : ''}`);
  };

  const first = await read();
  await registry.apply(first);
  announce(first);

  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<ReloadReport> => {
    const run = reloading.then(async () => {
      const file = await read();
      const report = await registry.apply(file);
      announce(file);
      return report;
    });
    reloading = run.catch(() => undefined);
    return run;
  };

  return {
    handler: gatewayHandler(registry, deps.verifyAccessToken, log),
    resources: () => registry.servers().map((s) => s.resource),
    reload,
    status: () =>
      registry.servers().map((s) => ({
        name: s.handler.config.name,
        kind: s.handler.config.kind,
        path: s.handler.config.path,
        resource: s.resource,
        ...s.handler.status(),
      })),
    close: async () => {
      await reloading;
      await registry.close();
    },
  };
}

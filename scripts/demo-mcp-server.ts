/**
 * A small MCP server for `npm run demo` and the end-to-end tests. Streamable HTTP, stateless,
 * one tool: `whoami` answers with what Latchkey says about the caller. Two ways to run it:
 *
 * - DEMO_AUTH=none (what `npm run demo` runs): no auth of its own, behind Latchkey's gateway,
 *   which checks the token and sends the caller's identity in X-Latchkey-* headers. It listens
 *   on loopback only, so nothing but the gateway can reach it and set those headers.
 * - DEMO_AUTH=kit (the default; `npm run demo -- --kit`): it checks tokens itself with the
 *   resource-server kit, publishing its own metadata and calling Latchkey's /introspect.
 *
 * Alone:
 *   DEMO_AUTH=none node dist-scripts/scripts/demo-mcp-server.js
 *   OAUTH_INTROSPECTION_SECRET=… LATCHKEY_ISSUER_URL=http://localhost:3000 node dist-scripts/scripts/demo-mcp-server.js
 */
import express, { type Express, type Request, type Response, type RequestHandler } from 'express';
import type { IncomingHttpHeaders } from 'node:http';
import { pathToFileURL } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { latchkeyBearerAuth, protectedResourceMetadataRouter } from '../src/resource-server/index.js';

export interface DemoServerOptions {
  /** The URL people paste into their MCP host; must be listed in Latchkey's OAUTH_RESOURCES. */
  resource: string;
  /** Latchkey's OAUTH_ISSUER_URL. */
  issuer: string;
  introspectionSecret: string;
  /** Where this server reaches Latchkey's /introspect, when not at the issuer URL. */
  introspectionEndpoint?: string;
  scopes: string[];
  cacheMaxAgeSeconds?: number;
}

/** Behind the gateway: where it serves MCP; everything else is the gateway's job. */
export interface GatewayDemoOptions {
  path: string;
}

/** What `whoami` tells the caller: only what its own token says. */
export function describeCaller(auth: AuthInfo | undefined): Record<string, unknown> {
  if (!auth) return { authenticated: false };
  return {
    client_id: auth.clientId,
    scopes: auth.scopes,
    resource: auth.resource?.href,
    expires_at: auth.expiresAt,
  };
}

/**
 * What `whoami` tells the caller behind the gateway: the X-Latchkey-* headers, which only the
 * gateway can set (their values are percent-encoded where not plain ASCII).
 */
export function describeGatewayCaller(headers: IncomingHttpHeaders | undefined): Record<string, unknown> {
  const header = (name: string): string | undefined => {
    const value = headers?.[name];
    return typeof value === 'string' ? decodeURIComponent(value) : undefined;
  };
  const clientId = header('x-latchkey-client-id');
  if (clientId === undefined) return { authenticated: false };
  const name = header('x-latchkey-client-name');
  const subject = header('x-latchkey-subject');
  return {
    client_id: clientId,
    ...(name !== undefined ? { client_name: name } : {}),
    scopes: (header('x-latchkey-scope') ?? '').split(' ').filter((s) => s.length > 0),
    ...(subject !== undefined ? { subject } : {}),
    via: 'latchkey gateway',
  };
}

type Describe = (extra: { authInfo?: AuthInfo | undefined; requestInfo?: { headers: IncomingHttpHeaders } | undefined }) => Record<string, unknown>;

function newMcpServer(describe: Describe): McpServer {
  const server = new McpServer({ name: 'latchkey-demo', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { title: 'Who am I?', description: 'Shows the client_id and scopes Latchkey knows the caller by.' },
    (extra) => {
      const caller = describe(extra);
      return { content: [{ type: 'text', text: JSON.stringify(caller) }], structuredContent: caller };
    },
  );
  return server;
}

/** Stateless Streamable HTTP at `mcpPath`: a fresh server and transport per request, no session to lose on restart. */
function serveMcp(app: Express, mcpPath: string, auth: RequestHandler[], describe: Describe): void {
  app.post(mcpPath, ...auth, express.json({ limit: '1mb' }), async (req: Request, res: Response) => {
    const server = newMcpServer(describe);
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  // No server-initiated stream and no session to delete in stateless mode.
  app.all(mcpPath, ...auth, (_req: Request, res: Response) => {
    res.setHeader('Allow', 'POST');
    res.status(405).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null });
  });
}

/** The demo server checking tokens itself with the resource-server kit. */
export function createDemoMcpApp(options: DemoServerOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(protectedResourceMetadataRouter({
    resource: options.resource,
    issuer: options.issuer,
    scopesSupported: options.scopes,
    resourceName: 'Latchkey demo MCP server',
  }));
  const auth = latchkeyBearerAuth({
    issuer: options.issuer,
    resource: options.resource,
    introspectionSecret: options.introspectionSecret,
    ...(options.introspectionEndpoint ? { introspectionEndpoint: options.introspectionEndpoint } : {}),
    ...(options.cacheMaxAgeSeconds !== undefined ? { cacheMaxAgeSeconds: options.cacheMaxAgeSeconds } : {}),
    onError: (detail) => process.stderr.write(`demo-mcp-server: ${detail}\n`),
  });
  serveMcp(app, new URL(options.resource).pathname, [auth], (extra) => describeCaller(extra.authInfo));
  return app;
}

/** The demo server behind Latchkey's gateway: no auth of its own, the caller from X-Latchkey-* headers. */
export function createGatewayDemoMcpApp(options: GatewayDemoOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  serveMcp(app, options.path, [], (extra) => describeGatewayCaller(extra.requestInfo?.headers));
  return app;
}

function fail(message: string): never {
  process.stderr.write(`demo-mcp-server: ${message}\n`);
  process.exit(1);
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

function appFromEnv(env: NodeJS.ProcessEnv): { port: number; host: string; app: Express; banner: string } {
  const port = Number(env.DEMO_PORT ?? '3001');
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('DEMO_PORT must be a port number');
  const host = env.DEMO_HOST ?? '127.0.0.1';
  const resource = env.DEMO_MCP_URL ?? `http://localhost:${port}/mcp`;
  const mode = env.DEMO_AUTH ?? 'kit';
  if (mode === 'none') {
    // Anyone who reaches it could claim any identity in X-Latchkey-* headers.
    if (!LOOPBACK.has(host)) fail('DEMO_AUTH=none serves without authentication: DEMO_HOST must be a loopback address');
    const mcpPath = new URL(resource).pathname;
    return { port, host, app: createGatewayDemoMcpApp({ path: mcpPath }), banner: `at ${mcpPath}, without auth of its own: only Latchkey's gateway should reach it` };
  }
  if (mode !== 'kit') fail('DEMO_AUTH must be kit or none');
  const secret = env.OAUTH_INTROSPECTION_SECRET;
  if (!secret) fail('set OAUTH_INTROSPECTION_SECRET to the same value Latchkey uses (or DEMO_AUTH=none behind the gateway)');
  const cache = env.DEMO_INTROSPECTION_CACHE_SECONDS;
  if (cache !== undefined && !(Number(cache) >= 0)) fail('DEMO_INTROSPECTION_CACHE_SECONDS must be zero or more seconds');
  const options: DemoServerOptions = {
    resource,
    issuer: env.LATCHKEY_ISSUER_URL ?? 'http://localhost:3000',
    introspectionSecret: secret,
    ...(env.LATCHKEY_INTROSPECTION_URL ? { introspectionEndpoint: env.LATCHKEY_INTROSPECTION_URL } : {}),
    scopes: (env.DEMO_SCOPES ?? 'mcp').split(/[\s,]+/).filter((s) => s.length > 0),
    ...(cache !== undefined ? { cacheMaxAgeSeconds: Number(cache) } : {}),
  };
  return { port, host, app: createDemoMcpApp(options), banner: `MCP URL ${options.resource}; trusting ${options.issuer}` };
}

async function main(): Promise<void> {
  const { port, host, app, banner } = appFromEnv(process.env);
  const server = app.listen(port, host, () => {
    process.stdout.write(`demo MCP server listening on ${host}:${port}; ${banner}\n`);
  });
  server.on('error', (err) => fail(err.message));
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();

/**
 * A small MCP server protected by Latchkey, to show the resource-server kit at work and to
 * give the end-to-end tests a real counterpart. Streamable HTTP, stateless, one tool:
 * `whoami` answers with what the access token says about the caller.
 *
 * Run it with `npm run demo` (which starts Latchkey too), or alone:
 *   OAUTH_INTROSPECTION_SECRET=… LATCHKEY_ISSUER_URL=http://localhost:3000 node dist-scripts/scripts/demo-mcp-server.js
 */
import express, { type Express, type Request, type Response } from 'express';
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

function newMcpServer(): McpServer {
  const server = new McpServer({ name: 'latchkey-demo', version: '1.0.0' });
  server.registerTool(
    'whoami',
    { title: 'Who am I?', description: 'Shows the client_id and scopes of the access token this call was made with.' },
    (extra) => {
      const caller = describeCaller(extra.authInfo);
      return { content: [{ type: 'text', text: JSON.stringify(caller) }], structuredContent: caller };
    },
  );
  return server;
}

export function createDemoMcpApp(options: DemoServerOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  const mcpPath = new URL(options.resource).pathname;

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

  // Stateless Streamable HTTP: a fresh server and transport per request, no session to lose on restart.
  app.post(mcpPath, auth, express.json({ limit: '1mb' }), async (req: Request, res: Response) => {
    const server = newMcpServer();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });
  // No server-initiated stream and no session to delete in stateless mode.
  app.all(mcpPath, auth, (_req: Request, res: Response) => {
    res.setHeader('Allow', 'POST');
    res.status(405).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed' }, id: null });
  });
  return app;
}

function fail(message: string): never {
  process.stderr.write(`demo-mcp-server: ${message}\n`);
  process.exit(1);
}

function optionsFromEnv(env: NodeJS.ProcessEnv): { port: number; host: string; options: DemoServerOptions } {
  const port = Number(env.DEMO_PORT ?? '3001');
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail('DEMO_PORT must be a port number');
  const secret = env.OAUTH_INTROSPECTION_SECRET;
  if (!secret) fail('set OAUTH_INTROSPECTION_SECRET to the same value Latchkey uses');
  const cache = env.DEMO_INTROSPECTION_CACHE_SECONDS;
  if (cache !== undefined && !(Number(cache) >= 0)) fail('DEMO_INTROSPECTION_CACHE_SECONDS must be zero or more seconds');
  return {
    port,
    host: env.DEMO_HOST ?? '127.0.0.1',
    options: {
      resource: env.DEMO_MCP_URL ?? `http://localhost:${port}/mcp`,
      issuer: env.LATCHKEY_ISSUER_URL ?? 'http://localhost:3000',
      introspectionSecret: secret,
      ...(env.LATCHKEY_INTROSPECTION_URL ? { introspectionEndpoint: env.LATCHKEY_INTROSPECTION_URL } : {}),
      scopes: (env.DEMO_SCOPES ?? 'mcp').split(/[\s,]+/).filter((s) => s.length > 0),
      ...(cache !== undefined ? { cacheMaxAgeSeconds: Number(cache) } : {}),
    },
  };
}

async function main(): Promise<void> {
  const { port, host, options } = optionsFromEnv(process.env);
  const app = createDemoMcpApp(options);
  const server = app.listen(port, host, () => {
    process.stdout.write(`demo MCP server listening on ${host}:${port}; MCP URL ${options.resource}; trusting ${options.issuer}\n`);
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

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, Server } from 'node:http';
import express, { type Request, type Response } from 'express';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { freePort } from '../../helpers/running-app.js';

/**
 * An MCP server with no authentication of its own, built on the MCP SDK's Streamable HTTP
 * server transport (what a TypeScript MCP server behind the gateway runs). It records every
 * request's headers and every JSON-RPC method, so tests can see exactly what reached it.
 */
export interface UpstreamServer {
  url: string;
  /** Headers of every HTTP request, in order. */
  seen: IncomingHttpHeaders[];
  /** The HTTP method of every request, in the order of `seen`. */
  methods: string[];
  /** JSON-RPC methods of requests whose connection closed before the upstream finished answering. */
  cutOff: string[];
  /** Methods (and tool names of tools/call) of every JSON-RPC request, in order. */
  calls: string[];
  /** Lets the `gated` or `die` tool go on; the test calls it when the first progress arrived. */
  release(): void;
  stop(): Promise<void>;
}

/**
 * `apiKey`: the server wants it in X-Api-Key, as many self-hosted servers do: without one it
 * answers 401 with a challenge of its own, with a wrong one 403.
 */
export async function startUpstream(options: { jsonResponse?: boolean; apiKey?: string } = {}): Promise<UpstreamServer> {
  const seen: IncomingHttpHeaders[] = [];
  const methods: string[] = [];
  const cutOff: string[] = [];
  const calls: string[] = [];
  const transports = new Map<string, StreamableHTTPServerTransport>();
  let release: () => void = () => undefined;
  let server: Server | undefined;

  const newServer = (): McpServer => {
    const mcp = new McpServer({ name: 'upstream', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'The headers this call arrived with' }, (extra) => ({
      content: [{ type: 'text', text: JSON.stringify(extra.requestInfo?.headers ?? {}) }],
    }));
    mcp.registerTool('secret-tool', { description: 'Must stay hidden behind the gateway' }, () => ({ content: [{ type: 'text', text: 'secret' }] }));
    mcp.registerTool('gated', { description: 'Sends progress, then waits until released' }, async (extra) => {
      const progressToken = extra._meta?.progressToken;
      if (progressToken === undefined) throw new Error('gated needs a progress token');
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 2 } });
      await gate;
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: 2, total: 2 } });
      return { content: [{ type: 'text', text: 'released' }] };
    });
    mcp.registerTool('die', { description: 'Sends progress, and once released drops every connection' }, async (extra) => {
      const progressToken = extra._meta?.progressToken;
      if (progressToken === undefined) throw new Error('die needs a progress token');
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      await extra.sendNotification({ method: 'notifications/progress', params: { progressToken, progress: 1, total: 2 } });
      await gate;
      server?.closeAllConnections();
      return new Promise(() => undefined);
    });
    return mcp;
  };

  const describe = (body: unknown): string[] =>
    (Array.isArray(body) ? body : [body]).flatMap((m) => {
      const message = m as { method?: string; params?: { name?: string } } | undefined;
      return message?.method ? [message.method === 'tools/call' ? `tools/call ${message.params?.name}` : message.method] : [];
    });

  const app = express();
  app.use((req: Request, _res: Response, next) => {
    seen.push(req.headers);
    methods.push(req.method);
    next();
  });
  const apiKey = options.apiKey;
  if (apiKey !== undefined) {
    app.use((req: Request, res: Response, next) => {
      const key = req.headers['x-api-key'];
      if (key === undefined) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="upstream"');
        res.status(401).json({ error: 'unauthorized' });
      } else if (key !== apiKey) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="upstream", error="insufficient_scope"');
        res.status(403).json({ error: 'forbidden' });
      } else next();
    });
  }
  app.use(express.json());
  app.use((req: Request, res: Response, next) => {
    res.once('close', () => {
      if (!res.writableFinished) cutOff.push(...describe(req.body));
    });
    next();
  });
  app.all('/mcp', async (req: Request, res: Response) => {
    calls.push(...describe(req.body));
    const sessionId = req.headers['mcp-session-id'];
    let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (!transport && req.method === 'POST' && isInitializeRequest(req.body)) {
      const created = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: options.jsonResponse ?? false,
        onsessioninitialized: (id) => void transports.set(id, created),
        onsessionclosed: (id) => void transports.delete(id),
      });
      await newServer().connect(created);
      transport = created;
    }
    if (!transport) {
      res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
      return;
    }
    await transport.handleRequest(req, res, req.body);
  });

  const port = await freePort();
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(port, '127.0.0.1', () => resolve(s));
  });
  const listening = server;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    methods,
    cutOff,
    calls,
    release: () => release(),
    stop: async () => {
      for (const t of transports.values()) await t.close();
      listening.closeAllConnections();
      await new Promise<void>((resolve) => listening.close(() => resolve()));
    },
  };
}

import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import type { StdioServerConfig } from './config-file.js';
import {
  errorResponse,
  GATEWAY_ERROR,
  isId,
  isInitializeRequest,
  isRequest,
  isResponse,
  requestIds,
  sendJsonRpcError,
  SESSION_NOT_FOUND,
  type JsonRpcId,
} from './json-rpc.js';
import { childEnv, describeExit, superviseProcess, type BaseEnv, type Exit, type SupervisedProcess } from './process-group.js';
import type { AuthorizedCall, HandlerStatus, LastError, ServerHandler } from './server-handler.js';
import type { ToolPolicy } from './tool-policy.js';

export interface StdioServerOptions {
  config: StdioServerConfig;
  policy: ToolPolicy | undefined;
  /** PATH and HOME of Latchkey's environment: the only variables a child gets besides its `env`. */
  baseEnv: BaseEnv;
  /** A session without requests for this long is ended. */
  idleMs: number;
  /** How often idle sessions are looked for. */
  idleCheckMs: number;
  /** Live processes at most; one more initialize gets 503. */
  maxProcesses: number;
  logger: Logger;
  clock: { now(): number };
}

/** Time a server gets to exit after SIGTERM before the group gets SIGKILL. */
const KILL_GRACE_MS = 3_000;
/** Longest stderr line logged as is: a server printing a huge blob must not flood the log. */
const MAX_STDERR_LINE = 4_000;

/**
 * Who started a session: only tokens of the same approval may use it. The grant, not the
 * client: with the PIN no person is recorded, and a metadata-document client (an https URL as
 * client_id) is the same client for every user of that app (MCP security best practices,
 * "Session Hijacking"). A grant keeps its id through refreshes.
 */
interface SessionOwner {
  clientId: string;
  grantId: string;
}

/** One MCP session: one child process, bridged to Streamable HTTP by the MCP SDK's own server transport. */
interface StdioSession {
  id: string | undefined;
  owner: SessionOwner;
  child: SupervisedProcess;
  transport: StreamableHTTPServerTransport;
  /** Client requests the server has not answered yet. */
  inFlight: Set<JsonRpcId>;
  /** progressToken → the request it belongs to, so progress goes to that request's stream. */
  progress: Map<JsonRpcId, JsonRpcId>;
  /** Open GET streams (the channel for server-initiated messages). */
  standaloneStreams: number;
  lastActivity: number;
  ending: Promise<void> | undefined;
}

/**
 * A stdio MCP server behind the gateway. A stdio server serves exactly one client, so each
 * MCP session gets its own process: spawned at `initialize`, ended by DELETE, by idleness,
 * by its own exit or by the gateway's shutdown. The Mcp-Session-Id is the gateway's.
 */
export function stdioServer(options: StdioServerOptions): ServerHandler {
  const { config, policy } = options;
  const log = options.logger.child({ gatewayServer: config.name });
  const live = new Set<StdioSession>();
  const byId = new Map<string, StdioSession>();
  let starting = 0;
  let lastError: LastError | undefined;

  const noteError = (message: string): void => {
    lastError = { at: options.clock.now(), message };
    log.warn(message);
  };

  const env = childEnv(options.baseEnv, config.env);

  const end = (session: StdioSession, reason: string): Promise<void> =>
    (session.ending ??= (async () => {
      live.delete(session);
      if (session.id !== undefined) byId.delete(session.id);
      log.info({ pid: session.child.pid, reason }, 'gateway session ended');
      await session.transport.close();
      await session.child.terminate(KILL_GRACE_MS);
    })());

  const send = (session: StdioSession, message: JSONRPCMessage, relatedRequestId?: JsonRpcId): Promise<void> =>
    session.transport.send(message, relatedRequestId !== undefined ? { relatedRequestId } : undefined).catch((err: unknown) => {
      // The client closed the stream this message belonged to; nothing is left to tell it.
      log.debug({ err }, 'message for a closed stream dropped');
    });

  const fromServer = (session: StdioSession, message: JSONRPCMessage): void => {
    if (isResponse(message)) {
      session.inFlight.delete(message.id);
      for (const [token, id] of session.progress) if (id === message.id) session.progress.delete(token);
      session.lastActivity = options.clock.now();
      void send(session, (policy?.filter(message) as JSONRPCMessage | undefined) ?? message);
      return;
    }
    // Over stdio a server cannot say which request a notification or request of its own
    // belongs to. Progress names its request by token; anything else goes to the GET
    // stream, or, when the client has none open, to the one request in flight.
    const params = 'params' in message ? (message.params as { progressToken?: unknown } | undefined) : undefined;
    let related: JsonRpcId | undefined;
    if ('method' in message && message.method === 'notifications/progress' && isId(params?.progressToken)) {
      related = session.progress.get(params.progressToken);
    } else if (session.standaloneStreams === 0 && session.inFlight.size === 1) {
      related = session.inFlight.values().next().value;
    }
    void send(session, message, related);
  };

  const toServer = (session: StdioSession, message: JSONRPCMessage): void => {
    if (isRequest(message)) {
      session.inFlight.add(message.id);
      const meta = (message.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta;
      if (isId(meta?.progressToken)) session.progress.set(meta.progressToken, message.id);
    }
    session.child.stdin.write(serializeMessage(message));
  };

  const onExit = async (session: StdioSession, exit: Exit): Promise<void> => {
    if (session.ending) return;
    const how = describeExit(exit);
    noteError(`process ${how}`);
    // Every pending call fails now, with a reason, instead of waiting for a client timeout.
    await Promise.all(
      [...session.inFlight].map((id) => send(session, errorResponse(id, GATEWAY_ERROR, `The MCP server "${config.name}" ${how} before answering; start a new session`) as JSONRPCMessage)),
    );
    session.inFlight.clear();
    await end(session, `process ${how}`);
  };

  const wire = (session: StdioSession): void => {
    const reader = new ReadBuffer();
    session.child.stdout.on('data', (chunk: Buffer) => {
      try {
        reader.append(chunk);
      } catch {
        noteError('wrote a line over 10 MiB on stdout');
        void end(session, 'line too long');
        return;
      }
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = reader.readMessage();
        } catch {
          log.warn('a line on stdout is not JSON-RPC (servers must log to stderr); ignored');
          continue;
        }
        if (message === null) break;
        fromServer(session, message);
      }
    });
    let partial = '';
    session.child.stderr.setEncoding('utf8');
    session.child.stderr.on('data', (text: string) => {
      const lines = (partial + text).split('\n');
      partial = lines.pop() ?? '';
      if (partial.length > MAX_STDERR_LINE) {
        lines.push(partial);
        partial = '';
      }
      for (const line of lines) if (line.trim() !== '') log.info({ pid: session.child.pid, stderr: line.slice(0, MAX_STDERR_LINE) }, 'stdio server stderr');
    });
    session.transport.onmessage = (message) => toServer(session, message);
    void session.child.exited.then((exit) => onExit(session, exit));
  };

  const start = async (req: Request, res: Response, call: AuthorizedCall): Promise<void> => {
    const { body } = call;
    const ids = requestIds(body);
    if (live.size + starting >= options.maxProcesses) {
      noteError(`refused a session: ${options.maxProcesses} processes already running`);
      sendJsonRpcError(res, 503, GATEWAY_ERROR, `The MCP server "${config.name}" already runs ${options.maxProcesses} sessions, its limit; try again later`, ids, { 'Retry-After': '30' });
      return;
    }
    starting++;
    let child: SupervisedProcess;
    try {
      child = await superviseProcess({ command: config.command, args: config.args, env, ...(config.cwd !== undefined ? { cwd: config.cwd } : {}) });
    } catch (err) {
      noteError(`could not start (${(err as NodeJS.ErrnoException).code ?? 'error'}${config.cwd !== undefined ? `; check that cwd ${config.cwd} exists` : ''})`);
      sendJsonRpcError(res, 502, GATEWAY_ERROR, `The MCP server "${config.name}" could not be started`, ids);
      return;
    } finally {
      starting--;
    }
    const session: StdioSession = {
      id: undefined,
      owner: ownerOf(call),
      child,
      transport: new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          session.id = id;
          byId.set(id, session);
        },
        onsessionclosed: () => end(session, 'deleted by the client'),
      }),
      inFlight: new Set(),
      progress: new Map(),
      standaloneStreams: 0,
      lastActivity: options.clock.now(),
      ending: undefined,
    };
    live.add(session);
    log.info({ pid: child.pid }, 'gateway session started');
    wire(session);
    await session.transport.handleRequest(req, res, body);
    // The transport refused the initialize (say, a wrong Accept header): no session, no process.
    if (session.transport.sessionId === undefined) await end(session, 'initialize refused');
  };

  const serve = async (session: StdioSession, req: Request, res: Response, body: unknown): Promise<void> => {
    session.lastActivity = options.clock.now();
    if (req.method === 'GET') {
      session.standaloneStreams++;
      res.once('close', () => session.standaloneStreams--);
    }
    await session.transport.handleRequest(req, res, body);
  };

  const idleTimer = setInterval(() => {
    const now = options.clock.now();
    for (const session of live) {
      if (session.inFlight.size === 0 && now - session.lastActivity >= options.idleMs) void end(session, 'idle');
    }
  }, options.idleCheckMs);
  idleTimer.unref();

  return {
    config,
    async handle(req: Request, res: Response, call: AuthorizedCall): Promise<void> {
      const sessionId = req.headers['mcp-session-id'];
      if (typeof sessionId === 'string') {
        const session = byId.get(sessionId);
        const owned = session !== undefined && sameOwner(session.owner, ownerOf(call));
        if (session && !owned) log.warn({ clientId: call.token.clientId }, 'refused a session id presented by a token of another approval than the one that started it');
        if (!session || session.ending || !owned) {
          // MCP transports, "Session Management": 404 tells the client to initialize anew.
          // A session id of another client's session is unknown to this caller (MCP security
          // best practices, "Session Hijacking"): the id alone never opens a session.
          sendJsonRpcError(res, 404, SESSION_NOT_FOUND, 'Session not found: start a new session with initialize', requestIds(call.body));
          return;
        }
        await serve(session, req, res, call.body);
        return;
      }
      if (req.method === 'POST' && isInitializeRequest(call.body)) {
        await start(req, res, call);
        return;
      }
      sendJsonRpcError(res, 400, GATEWAY_ERROR, 'Bad Request: Mcp-Session-Id header is required', requestIds(call.body));
    },
    status(): HandlerStatus {
      let openRequests = 0;
      for (const session of live) openRequests += session.inFlight.size;
      return { sessions: byId.size, processes: live.size, openRequests, ...(lastError ? { lastError } : {}) };
    },
    async close(): Promise<void> {
      clearInterval(idleTimer);
      await Promise.all([...live].map((session) => end(session, 'gateway closing')));
    },
  };
}

const ownerOf = (call: AuthorizedCall): SessionOwner => ({ clientId: call.token.clientId, grantId: call.token.grantId });

const sameOwner = (a: SessionOwner, b: SessionOwner): boolean => a.clientId === b.clientId && a.grantId === b.grantId;

import type { Request, Response } from 'express';
import type { GatewayServerConfig } from './config-file.js';
import type { VerifiedToken } from './verified-token.js';

/** A request the router has authorized: the caller's token and, for a POST, the parsed body. */
export interface AuthorizedCall {
  token: VerifiedToken;
  /** The JSON body of a POST, parsed; undefined for GET and DELETE. */
  body: unknown;
  /** The body's bytes as received, so an HTTP upstream gets exactly what the client sent. */
  raw: Buffer | undefined;
}

export interface LastError {
  at: number;
  message: string;
}

export interface HandlerStatus {
  /** Live MCP sessions the gateway holds (stdio servers; an HTTP upstream keeps its own). */
  sessions: number;
  /** Live child processes (stdio servers). */
  processes: number;
  /** Requests and streams being served right now. */
  openRequests: number;
  lastError?: LastError;
}

/** One configured MCP server behind the gateway: a stdio command or an HTTP upstream. */
export interface ServerHandler {
  readonly config: GatewayServerConfig;
  handle(req: Request, res: Response, call: AuthorizedCall): Promise<void>;
  status(): HandlerStatus;
  /** Ends every session, child process and open request of this server. */
  close(): Promise<void>;
}

import type { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { HttpServerConfig, StdioServerConfig } from './config-file.js';
import { childEnv, describeExit, superviseProcess, type BaseEnv, type Exit, type SupervisedProcess } from './process-group.js';
import { SseEventSplitter } from './sse-events.js';
import { toolPolicy } from './tool-policy.js';

/**
 * `latchkey doctor`'s look at each configured MCP server: start it once exactly as the
 * gateway would (same environment rules, same process-group supervisor), ask for its tools,
 * and end it; or send an HTTP server one `initialize`. It answers what went wrong in words
 * an owner can act on, never with a configured env or header value.
 */

export type StdioProbe =
  | { ok: true; serverName: string; tools: string[]; hiddenTools: string[] }
  | { ok: false; reason: string };

export type HttpProbe = { ok: true; status: number; serverName: string | undefined } | { ok: false; status: number | undefined; reason: string };

/** Time a server gets to exit after SIGTERM before its group gets SIGKILL (as in the gateway). */
const KILL_GRACE_MS = 3_000;
/** stderr lines kept to explain a failure, and the length of each. */
const STDERR_TAIL_LINES = 3;
const STDERR_LINE_CHARS = 200;
/** tools/list pages followed at most: a server answering cursors forever must not hang doctor. */
const MAX_TOOL_PAGES = 50;
const CLIENT_INFO = { name: 'latchkey-doctor', version: '1' };

class ProbeTimeout extends Error {}

/**
 * The MCP SDK client's transport over a supervised child: line-delimited JSON-RPC on its
 * stdin and stdout (MCP transports, "stdio"). Lines that are not JSON-RPC are counted.
 */
class SupervisedStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  strayLines = 0;

  constructor(private readonly child: SupervisedProcess) {}

  async start(): Promise<void> {
    const reader = new ReadBuffer();
    this.child.stdout.on('data', (chunk: Buffer) => {
      try {
        reader.append(chunk);
      } catch (err) {
        this.onerror?.(err as Error);
        return;
      }
      for (;;) {
        let message: JSONRPCMessage | null;
        try {
          message = reader.readMessage();
        } catch {
          this.strayLines++;
          continue;
        }
        if (message === null) break;
        this.onmessage?.(message);
      }
    });
    void this.child.exited.then(() => this.onclose?.());
  }

  async send(message: JSONRPCMessage): Promise<void> {
    this.child.stdin.write(serializeMessage(message));
  }

  /** The probe ends the process group itself; the client closing changes nothing. */
  async close(): Promise<void> {}
}

/** The last few lines of a stream, trimmed, to quote in a failure. */
function tailOf(stream: Readable): () => string[] {
  const lines: string[] = [];
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const parts = (partial + text).split(/\r?\n/);
    partial = (parts.pop() ?? '').slice(-STDERR_LINE_CHARS);
    for (const line of parts) {
      if (line.trim() === '') continue;
      lines.push(line.trim().slice(0, STDERR_LINE_CHARS));
      if (lines.length > STDERR_TAIL_LINES) lines.shift();
    }
  });
  return () => [...lines, ...(partial.trim() ? [partial.trim()] : [])].slice(-STDERR_TAIL_LINES);
}

/**
 * Starts a stdio server once, runs `initialize` and `tools/list` within `timeoutMs`, and ends
 * its whole process group whatever happened. `tools` are those the tool policy lets through.
 */
export async function probeStdioServer(config: StdioServerConfig, baseEnv: BaseEnv, timeoutMs: number): Promise<StdioProbe> {
  let child: SupervisedProcess;
  try {
    child = await superviseProcess({ command: config.command, args: config.args, env: childEnv(baseEnv, config.env), ...(config.cwd !== undefined ? { cwd: config.cwd } : {}) });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    return { ok: false, reason: `could not start (${code}${config.cwd !== undefined ? `; check that cwd ${config.cwd} exists` : ''})` };
  }
  let exit: Exit | undefined;
  void child.exited.then((e) => (exit = e));
  const stderr = tailOf(child.stderr);
  const transport = new SupervisedStdioTransport(child);
  const client = new Client(CLIENT_INFO);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProbeTimeout()), timeoutMs);
  });
  const work = async (): Promise<StdioProbe> => {
    await client.connect(transport, { timeout: timeoutMs });
    const names: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const listed = await client.listTools(cursor === undefined ? {} : { cursor }, { timeout: timeoutMs });
      names.push(...listed.tools.map((t) => t.name));
      cursor = listed.nextCursor;
      if (cursor === undefined) break;
    }
    const policy = config.tools ? toolPolicy(config.tools) : undefined;
    return {
      ok: true,
      serverName: client.getServerVersion()?.name ?? config.name,
      tools: names.filter((n) => policy?.allows(n) ?? true),
      hiddenTools: names.filter((n) => !(policy?.allows(n) ?? true)),
    };
  };
  try {
    return await Promise.race([work(), deadline]);
  } catch (err) {
    // `exit` is set before the transport reports the close, so a failure caused by the exit names it.
    const what =
      exit !== undefined ? (exit.code === 126 || exit.code === 127 ? `it ${describeExit(exit)}` : `the process ${describeExit(exit)} before answering`)
      : err instanceof ProbeTimeout ? `no answer to initialize and tools/list within ${timeoutMs / 1000} s`
      : `the MCP exchange failed (${(err as Error).message})`;
    const stray = transport.strayLines > 0 ? `; it wrote ${transport.strayLines} line(s) on stdout that are not JSON-RPC (a stdio server must log to stderr)` : '';
    const said = stderr();
    return { ok: false, reason: `${what}${stray}${said.length > 0 ? `; its stderr ended with: ${said.join(' | ')}` : ''}` };
  } finally {
    clearTimeout(timer);
    await client.close().catch(() => undefined);
    await child.terminate(KILL_GRACE_MS);
  }
}

/**
 * POSTs one `initialize` to an HTTP server with its configured headers (never Latchkey's
 * identity headers: this is not a client's request), reads the answer's server name when it
 * can, and ends the session the server may have opened.
 */
export async function probeHttpServer(config: HttpServerConfig, timeoutMs: number): Promise<HttpProbe> {
  const signal = AbortSignal.timeout(timeoutMs);
  const headers = { ...config.headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: CLIENT_INFO } };
  let res: Response;
  try {
    res = await fetch(config.url, { method: 'POST', headers, body: JSON.stringify(initialize), signal, redirect: 'manual' });
  } catch (err) {
    if (signal.aborted) return { ok: false, status: undefined, reason: `no answer within ${timeoutMs / 1000} s` };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { ok: false, status: undefined, reason: `unreachable (${cause?.code ?? cause?.message ?? (err as Error).message})` };
  }
  const sessionId = res.headers.get('mcp-session-id');
  try {
    if (res.status === 401 || res.status === 403) {
      return { ok: false, status: res.status, reason: `refused the request (HTTP ${res.status}): the gateway sends the same headers, so check those configured for it` };
    }
    if (res.status < 200 || res.status > 299) return { ok: false, status: res.status, reason: `answered initialize with HTTP ${res.status}` };
    const answer = await initializeAnswer(res, signal).catch(() => undefined);
    if (answer?.error) return { ok: false, status: res.status, reason: `answered initialize with an error: ${answer.error}` };
    return { ok: true, status: res.status, serverName: answer?.serverName };
  } finally {
    if (!res.bodyUsed) await res.body?.cancel().catch(() => undefined);
    if (sessionId !== null) {
      await fetch(config.url, { method: 'DELETE', headers: { ...config.headers, 'mcp-session-id': sessionId }, signal: AbortSignal.timeout(timeoutMs) }).catch(() => undefined);
    }
  }
}

/** The initialize response in a JSON body or the first message of an event stream. */
async function initializeAnswer(res: Response, signal: AbortSignal): Promise<{ serverName?: string; error?: string } | undefined> {
  const type = (res.headers.get('content-type') ?? '').toLowerCase();
  const read = (message: unknown): { serverName?: string; error?: string } | undefined => {
    // Only the answer to the initialize (id 1): a notification may come first on a stream.
    if (typeof message !== 'object' || message === null || (message as { id?: unknown }).id !== 1) return undefined;
    const { result, error } = message as { result?: { serverInfo?: { name?: unknown } }; error?: { message?: unknown } };
    if (error !== undefined) return { error: typeof error.message === 'string' ? error.message : 'unknown error' };
    const name = result?.serverInfo?.name;
    return typeof name === 'string' ? { serverName: name } : {};
  };
  if (type.startsWith('application/json')) return read(JSON.parse(await res.text()) as unknown);
  if (!type.startsWith('text/event-stream') || !res.body) return undefined;
  let found: { serverName?: string; error?: string } | undefined;
  const splitter = new SseEventSplitter((event) => {
    if (found !== undefined || event.data === undefined) return;
    try {
      found = read(JSON.parse(event.data) as unknown);
    } catch {
      // An event that is not JSON (a comment, a ping): the answer comes later.
    }
  });
  const reader = res.body.getReader();
  try {
    while (found === undefined && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      splitter.push(Buffer.from(value));
    }
    return found;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

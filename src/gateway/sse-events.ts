/**
 * Splits a text/event-stream into whole events (WHATWG HTML §9.2.6) so the gateway can look
 * at each JSON-RPC message while passing the stream on without delay: every event is handed
 * on as soon as its blank line arrives, byte for byte unless `rewrite` changes its data.
 * Lines end in CRLF, LF or CR (Python's sse-starlette writes CRLF).
 */
export interface SseEvent {
  /** The `data:` lines joined with "\n", as EventSource would deliver them; undefined without data. */
  data: string | undefined;
  /** The event exactly as received, blank line included. */
  raw: Buffer;
}

const LF = 0x0a;
const CR = 0x0d;

export class SseEventSplitter {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  /** Feeds bytes; complete events are delivered before this returns. */
  push(chunk: Buffer): void {
    const buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let eventStart = 0;
    let lineStart = 0;
    let i = 0;
    while (i < buffer.length) {
      const byte = buffer[i];
      if (byte !== LF && byte !== CR) {
        i++;
        continue;
      }
      // A CR as the last byte may be the first half of a CRLF: wait for the next chunk.
      if (byte === CR && i + 1 === buffer.length) break;
      const end = byte === CR && buffer[i + 1] === LF ? i + 2 : i + 1;
      if (i === lineStart) {
        this.onEvent(parse(buffer.subarray(eventStart, end)));
        eventStart = end;
      }
      i = end;
      lineStart = end;
    }
    this.pending = Buffer.from(buffer.subarray(eventStart));
  }
}

function parse(raw: Buffer): SseEvent {
  let data: string[] | undefined;
  for (const line of raw.toString('utf8').split(/\r\n|\r|\n/)) {
    if (line === 'data' || line.startsWith('data:')) {
      const value = line.slice(5);
      (data ??= []).push(value.startsWith(' ') ? value.slice(1) : value);
    }
  }
  return { data: data?.join('\n'), raw };
}

/**
 * The event with its data replaced: other fields (id, event, retry) stay as they were, the
 * data becomes one line (JSON has no raw line breaks).
 */
export function withData(event: SseEvent, data: string): Buffer {
  const kept = event.raw
    .toString('utf8')
    .split(/\r\n|\r|\n/)
    .filter((line) => line !== '' && line !== 'data' && !line.startsWith('data:'));
  return Buffer.from(`${[...kept, `data: ${data}`].join('\n')}\n\n`, 'utf8');
}

/** One event carrying a JSON-RPC message, as the MCP SDK writes them. */
export function messageEvent(message: unknown): Buffer {
  return Buffer.from(`event: message\ndata: ${JSON.stringify(message)}\n\n`, 'utf8');
}

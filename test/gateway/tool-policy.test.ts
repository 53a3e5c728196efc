import { toolPolicy } from '../../src/gateway/tool-policy.js';
import { SseEventSplitter, withData } from '../../src/gateway/sse-events.js';

const list = (...names: string[]) => ({ jsonrpc: '2.0', id: 1, result: { tools: names.map((name) => ({ name, inputSchema: { type: 'object' } })), nextCursor: 'c2' } });
const names = (message: unknown): string[] => ((message as ReturnType<typeof list>).result.tools ?? []).map((t) => t.name);

describe('tool policy', () => {
  it('allow: only matching names, with * globs', () => {
    const policy = toolPolicy({ allow: ['read_*', 'search'] });
    expect(['read_file', 'read_', 'search', 'search_all', 'write_file', 'xread_file'].filter(policy.allows)).toEqual(['read_file', 'read_', 'search']);
  });

  it('deny: everything but matching names; other characters are literal', () => {
    const policy = toolPolicy({ deny: ['*delete*', 'a.b', 'x+'] });
    expect(['delete', 'undelete_all', 'a.b', 'aXb', 'x+', 'xx', 'list'].filter(policy.allows)).toEqual(['aXb', 'xx', 'list']);
  });

  it('filters a tools/list result and keeps everything else of it', () => {
    const policy = toolPolicy({ deny: ['secret*'] });
    const filtered = policy.filter(list('a', 'secret_b', 'c'));
    expect(names(filtered)).toEqual(['a', 'c']);
    expect(filtered).toEqual(expect.objectContaining({ jsonrpc: '2.0', id: 1, result: expect.objectContaining({ nextCursor: 'c2' }) }));
    expect(policy.filter(list('a', 'c'))).toBeUndefined();
    expect(policy.filter({ jsonrpc: '2.0', id: 2, result: { content: [] } })).toBeUndefined();
    expect(policy.filter({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })).toBeUndefined();
    expect(names((policy.filter([list('secret_x'), { jsonrpc: '2.0', id: 3, result: {} }]) as unknown[])[0])).toEqual([]);
  });

  it('refuses a call of a hidden tool, and a batch that contains one, with JSON-RPC errors', () => {
    const policy = toolPolicy({ allow: ['echo'] });
    const call = (id: number, name: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
    expect(policy.refuse(call(1, 'echo'))).toBeUndefined();
    expect(policy.refuse({ jsonrpc: '2.0', id: 1, method: 'tools/list' })).toBeUndefined();
    expect(policy.refuse(call(7, 'rm'))).toEqual([{ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Tool "rm" is not available through this gateway' } }]);
    const batch = policy.refuse([call(1, 'echo'), { jsonrpc: '2.0', method: 'notifications/initialized' }, call(2, 'rm')]);
    expect(batch?.map((e) => [e.id, e.error.code])).toEqual([[1, -32602], [2, -32602]]);
    expect(policy.refuse({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: {} })?.[0]?.id).toBe(4);
  });
});

describe('event stream filtering', () => {
  const run = (chunks: string[], rewrite: (data: string) => string | undefined): { events: string[]; out: string } => {
    const events: string[] = [];
    let out = '';
    const splitter = new SseEventSplitter((event) => {
      events.push(event.data ?? '(no data)');
      const changed = event.data === undefined ? undefined : rewrite(event.data);
      out += (changed === undefined ? event.raw : withData(event, changed)).toString('utf8');
    });
    for (const chunk of chunks) splitter.push(Buffer.from(chunk, 'utf8'));
    return { events, out };
  };
  const policy = toolPolicy({ deny: ['secret'] });
  const filterData = (data: string): string | undefined => {
    const filtered = policy.filter(JSON.parse(data));
    return filtered === undefined ? undefined : JSON.stringify(filtered);
  };

  it('passes events byte for byte and delivers each as soon as its blank line arrives', () => {
    const stream = ': keepalive\n\nevent: message\nid: 7\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}\n\n';
    const delivered: number[] = [];
    const splitter = new SseEventSplitter(() => delivered.push(delivered.length));
    splitter.push(Buffer.from(stream.slice(0, 14)));
    expect(delivered).toHaveLength(1);
    splitter.push(Buffer.from(stream.slice(14, 40)));
    expect(delivered).toHaveLength(1);
    splitter.push(Buffer.from(stream.slice(40)));
    expect(delivered).toHaveLength(2);
    expect(run([stream], filterData).out).toBe(stream);
  });

  it('filters a tools/list result carried by an event, keeping its id and event type', () => {
    const data = JSON.stringify(list('open', 'secret'));
    const { out } = run([`event: message\nid: 42\ndata: ${data}\n\n`], filterData);
    expect(out).toBe(`event: message\nid: 42\ndata: ${JSON.stringify(list('open'))}\n\n`);
  });

  it('understands CRLF and CR line ends, split anywhere, and multi-line data', () => {
    const data = JSON.stringify(list('secret', 'x'));
    const crlf = `event: message\r\ndata: ${data}\r\n\r\n`;
    for (let cut = 1; cut < crlf.length; cut += 7) {
      const { events, out } = run([crlf.slice(0, cut), crlf.slice(cut)], filterData);
      expect(events).toEqual([data]);
      expect(out).toBe(`event: message\ndata: ${JSON.stringify(list('x'))}\n\n`);
    }
    // A CR at the very end of a chunk waits for the next one: it may be half of a CRLF.
    expect(run(['data: a\r', '\n\r', '\n'], () => undefined).events).toEqual(['a']);
    expect(run(['data: a\r\r: next\r'], () => undefined).events).toEqual(['a']);
    expect(run(['data: {"a":\ndata: 1}\n\n'], () => undefined).events).toEqual(['{"a":\n1}']);
  });
});

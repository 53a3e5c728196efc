import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GatewayConfigError, loadGatewayFile, parseGatewayFile, type GatewayFile } from '../../src/gateway/config-file.js';
import { endpointPaths, hasSubtree } from '../../src/oauth/endpoints.js';

const FILE = '/etc/latchkey/gateway.json';
const policy = { validScopes: ['mcp', 'files'], defaultScopes: ['mcp'] };
const parse = (value: unknown): GatewayFile => parseGatewayFile(JSON.stringify(value), FILE, policy);
const servers = (mcpServers: Record<string, unknown>): GatewayFile => parse({ mcpServers });
const error = (value: unknown): string => {
  try {
    parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('the file was accepted');
};

describe('gateway file: what Claude Desktop and Cursor write', () => {
  it('reads the issue example: a stdio and an HTTP server with defaults', () => {
    const file = servers({
      files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/files'], env: { X: 'y' }, cwd: '/srv' },
      notes: { url: 'http://127.0.0.1:8000/mcp', headers: { 'X-Api-Key': 'k' } },
    });
    expect(file.servers).toEqual([
      { name: 'files', kind: 'stdio', path: '/files/mcp', scopes: ['mcp'], command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/srv/files'], env: { X: 'y' }, cwd: '/srv' },
      { name: 'notes', kind: 'http', path: '/notes/mcp', scopes: ['mcp'], url: 'http://127.0.0.1:8000/mcp', headers: { 'X-Api-Key': 'k' } },
    ]);
    expect(file.ignoredKeys).toEqual([]);
  });

  it('takes Latchkey keys path, scopes and tools; a relative cwd is the file’s directory', () => {
    const [s] = servers({ f: { command: 'srv', path: '/x/y', scopes: ['files'], tools: { deny: ['rm*'] }, cwd: 'work' } }).servers;
    expect(s).toEqual(expect.objectContaining({ path: '/x/y', scopes: ['files'], tools: { deny: ['rm*'] }, cwd: '/etc/latchkey/work' }));
  });

  it('ignores keys other hosts use, listing them for one log line, and skips disabled servers', () => {
    const file = servers({
      a: { command: 'a', type: 'stdio', autoApprove: ['x'], alwaysAllow: [], timeout: 60, transport: 'stdio' },
      b: { url: 'https://b.example/mcp', type: 'http', disabled: false },
      c: { command: 'c', disabled: true },
    });
    expect(file.servers.map((s) => s.name)).toEqual(['a', 'b']);
    expect(file.ignoredKeys).toEqual(['a.type', 'a.autoApprove', 'a.alwaysAllow', 'a.timeout', 'a.transport', 'b.type']);
    expect(file.disabled).toEqual(['c']);
    expect(parse({ mcpServers: {}, globalShortcut: 'Ctrl+Space' }).servers).toEqual([]);
  });

  it('ignores Cursor\'s per-server "auth" (a static OAuth client for a remote server) with the other foreign keys', () => {
    const file = servers({
      linear: { url: 'https://mcp.example.com/mcp', auth: { CLIENT_ID: 'cursor-client', CLIENT_SECRET: 'shh', scopes: ['read'] } },
      notes: { url: 'http://127.0.0.1:8000/mcp', headers: { 'X-Api-Key': 'k' } },
    });
    expect(file.servers.map((s) => s.name)).toEqual(['linear', 'notes']);
    expect(file.servers[0]).toEqual({ name: 'linear', kind: 'http', path: '/linear/mcp', scopes: ['mcp'], url: 'https://mcp.example.com/mcp', headers: {} });
    expect(file.ignoredKeys).toEqual(['linear.auth']);
  });

  it.each([
    [{ mcpServers: { files: { command: 'x', args: 'not-an-array' } } }, 'server "files", key "args": expected an array of strings'],
    [{ mcpServers: { files: { command: 'x', env: { A: 1 } } } }, 'server "files", key "env.A": expected a string value'],
    [{ mcpServers: { files: { command: 'x', tool: { deny: ['a'] } } } }, 'server "files", key "tool": unknown key'],
    [{ mcpServers: { files: { command: 'x', tools: { allow: ['a'], deny: ['b'] } } } }, 'server "files", key "tools": expected {"allow": [...]} or {"deny": [...]}'],
    [{ mcpServers: { files: { command: 'x', url: 'http://a/mcp' } } }, 'server "files": set exactly one of "command"'],
    [{ mcpServers: { files: {} } }, 'server "files": set exactly one of "command"'],
    [{ mcpServers: { files: { command: 'x', scopes: ['admin'] } } }, 'server "files", key "scopes": "admin" is not listed in OAUTH_VALID_SCOPES'],
    [{ mcpServers: { files: { command: 'x', path: '/token' } } }, 'server "files", key "path": "/token" collides with Latchkey\'s own endpoint /token'],
    [{ mcpServers: { files: { command: 'x', path: '/Admin/mcp' } } }, 'key "path": "/Admin/mcp" collides with Latchkey\'s own endpoint /admin'],
    [{ mcpServers: { files: { command: 'x', path: '/authorize/consent' } } }, 'key "path": "/authorize/consent" collides with Latchkey\'s own endpoint /authorize'],
    [{ mcpServers: { files: { command: 'x', path: '/oauth/stats' } } }, 'key "path": "/oauth/stats" collides with Latchkey\'s own endpoint /oauth/stats'],
    [{ mcpServers: { files: { command: 'x', path: '/account' } } }, 'server "files", key "path": "/account" collides with Latchkey\'s own endpoint /account'],
    [{ mcpServers: { files: { command: 'x', path: '/login/callback/x' } } }, 'server "files", key "path": "/login/callback/x" collides with Latchkey\'s own endpoint /login/callback'],
    [{ mcpServers: { files: { command: 'x', path: '/Login/Start/github' } } }, 'key "path": "/Login/Start/github" collides with Latchkey\'s own endpoint /login/start'],
    [{ mcpServers: { files: { command: 'x', path: '/metrics' } } }, 'server "files", key "path": "/metrics" collides with Latchkey\'s own endpoint /metrics'],
    [{ mcpServers: { files: { command: 'x', path: '/health' } } }, 'server "files", key "path": "/health" collides with Latchkey\'s own endpoint /health'],
    [{ mcpServers: { files: { command: 'x', path: '/healthz' } } }, 'key "path": "/healthz" collides with Latchkey\'s own endpoint /healthz'],
    [{ mcpServers: { files: { command: 'x', path: '/assets/mcp' } } }, 'key "path": "/assets/mcp" collides with Latchkey\'s own endpoint /assets'],
    [{ mcpServers: { files: { command: 'x', path: '/.well-known/mcp' } } }, 'key "path"'],
    [{ mcpServers: { files: { command: 'x', path: 'mcp' } } }, 'key "path": "mcp" must start with "/"'],
    [{ mcpServers: { files: { command: 'x', path: '/a/../b' } } }, 'key "path"'],
    [{ mcpServers: { files: { command: 'x', path: '/a/' } } }, 'key "path"'],
    [{ mcpServers: { a: { command: 'x', path: '/same' }, b: { command: 'y', path: '/SAME' } } }, 'server "b", key "path": "/SAME" is also the path of server "a"'],
    [{ mcpServers: { 'my files': { command: 'x' } } }, 'server "my files", key "path": the name has characters a URL path cannot carry'],
    [{ mcpServers: { notes: { url: 'ftp://a/mcp' } } }, 'server "notes", key "url": must be an http:// or https:// URL'],
    [{ mcpServers: { notes: { url: 'not a url' } } }, 'key "url": is not an absolute URL'],
    [{ mcpServers: { notes: { url: 'http://a/mcp', headers: { 'X-Latchkey-Client-Id': 'x' } } } }, 'key "headers": "X-Latchkey-Client-Id" is set by the gateway itself'],
    [{ mcpServers: { notes: { url: 'http://a/mcp', headers: { Authorization: 'Bearer a\r\nX: y' } } } }, 'the value of "Authorization" contains a line break'],
    [{ mcpServers: { notes: { url: 'http://a/mcp', env: { A: 'b' } } } }, 'key "env": only a "command" server takes args, env and cwd'],
    [{ mcpServers: { notes: { url: 'http://a/mcp', type: 'sse' } } }, 'key "type": "sse" (the old HTTP+SSE transport) is not supported'],
    [{ servers: {} }, 'key "mcpServers"'],
    [[], 'expected an object with "mcpServers"'],
  ])('refuses a bad file with one line naming server and key (%#)', (file, message) => {
    const line = error(file);
    expect(line.startsWith(`OAUTH_GATEWAY_CONFIG (${FILE}): `)).toBe(true);
    expect(line).toContain(message);
  });

  it('refuses every path of Latchkey\'s endpoint table, and anything below those with pages below, so no endpoint added later is shadowed', () => {
    for (const [name, own] of endpointPaths()) {
      for (const p of hasSubtree(name) ? [own, `${own}/mcp`] : [own]) {
        if (p.startsWith('/.well-known')) continue; // refused earlier, by the path syntax (no dot segment may lead)
        const line = error({ mcpServers: { files: { command: 'x', path: p } } });
        const said = `server "files", key "path": "${p}" collides with Latchkey's own endpoint `;
        expect(line).toContain(said);
        // The endpoint named is this one, or one it lies below (/authorize/consent is under /authorize).
        const named = line.slice(line.indexOf(said) + said.length);
        expect({ p, named, under: own === named || own.startsWith(`${named}/`) }).toEqual({ p, named, under: true });
      }
    }
  });

  it('lets servers named after an endpoint keep their default path below it (/metrics/mcp shadows nothing)', () => {
    const file = { mcpServers: { metrics: { command: 'x' }, health: { command: 'x' }, token: { url: 'http://127.0.0.1:9/mcp' }, account: { command: 'x', path: '/people/mcp' } } };
    expect(parse(file).servers.map((s) => s.path)).toEqual(['/metrics/mcp', '/health/mcp', '/token/mcp', '/people/mcp']);
  });

  it('never repeats a header value in an error: they are often keys', () => {
    expect(error({ mcpServers: { n: { url: 'http://a/mcp', headers: { 'X-Key': 'sk-live-123\n' } } } })).not.toContain('sk-live-123');
  });

  it('reports a missing file and broken JSON in one line', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-gwfile-'));
    try {
      await expect(loadGatewayFile(path.join(dir, 'none.json'), policy)).rejects.toThrow(`OAUTH_GATEWAY_CONFIG (${path.join(dir, 'none.json')}): no such file`);
      writeFileSync(path.join(dir, 'bad.json'), '{ "mcpServers": { ');
      await expect(loadGatewayFile(path.join(dir, 'bad.json'), policy)).rejects.toThrow(/is not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

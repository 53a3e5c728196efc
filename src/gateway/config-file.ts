import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { endpointPaths, hasSubtree } from '../oauth/endpoints.js';

/**
 * The gateway's file (OAUTH_GATEWAY_CONFIG): the `mcpServers` shape of Claude Desktop's
 * claude_desktop_config.json and Cursor's mcp.json, so an owner can point Latchkey at the
 * file they already have. Latchkey adds three optional keys per server: `path`, `scopes`
 * and `tools`.
 */

export type ToolsRule = { allow: string[] } | { deny: string[] };

interface ServerCommon {
  name: string;
  /** Where the gateway serves it, e.g. /files/mcp; its resource URL is the issuer + path. */
  path: string;
  /** Scopes a token must carry to use it. */
  scopes: string[];
  tools?: ToolsRule;
}

export interface StdioServerConfig extends ServerCommon {
  kind: 'stdio';
  command: string;
  args: string[];
  env: Record<string, string>;
  /** Absolute; a relative `cwd` in the file is taken from the file's directory. */
  cwd?: string;
}

export interface HttpServerConfig extends ServerCommon {
  kind: 'http';
  url: string;
  headers: Record<string, string>;
}

export type GatewayServerConfig = StdioServerConfig | HttpServerConfig;

export interface GatewayFile {
  servers: GatewayServerConfig[];
  /** Keys other hosts use that Latchkey does not, as "server.key", for one log line. */
  ignoredKeys: string[];
  /** Servers the file marks `"disabled": true` (Cursor, Cline): not served. */
  disabled: string[];
}

/** A bad gateway file: the message is one line naming the file, the server and the key. */
export class GatewayConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayConfigError';
  }
}

export interface GatewayFilePolicy {
  validScopes: readonly string[];
  defaultScopes: readonly string[];
}

/**
 * Keys Claude Desktop, Cursor, VS Code, Cline or Windsurf write that mean nothing to the
 * gateway. `disabled` is not among them: a server its owner switched off stays off. `auth` is
 * Cursor's static OAuth client for signing in to a remote server; the gateway never signs in
 * to an upstream (it sends the configured `headers`), so it has no use for it.
 */
const FOREIGN_KEYS = new Set(['type', 'autoApprove', 'alwaysAllow', 'transport', 'transportType', 'timeout', 'description', 'envFile', 'auth']);
const OWN_KEYS = ['command', 'args', 'env', 'cwd', 'url', 'headers', 'path', 'scopes', 'tools'];

/**
 * Paths no gateway server may take: every path of Latchkey's own endpoints, from the one table
 * of them, with everything below those that serve pages below (/admin/audit,
 * /login/callback/<provider>), and all of /.well-known/ (RFC 8615 site metadata; the gateway
 * serves each server's RFC 9728 document there). The gateway answers before Latchkey's
 * routes, so a collision would shadow Latchkey's own page; a server named `metrics` or
 * `health` keeps its default /metrics/mcp, which shadows nothing. Express matches routes
 * case-insensitively, so a gateway path is compared in lower case.
 */
const RESERVED = [
  ...endpointPaths().map(([name, p]) => ({ path: p.toLowerCase(), below: hasSubtree(name) })),
  { path: '/.well-known', below: true },
];

/** RFC 3986 unreserved characters only, in one or more segments: no encoding questions, no dot segments. */
const PATH_SYNTAX = /^(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$/;
const NAME_SYNTAX = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;
/** RFC 9110 §5.6.2 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the gateway sets itself or that belong to the connection. */
const FORBIDDEN_HEADERS = /^(x-latchkey-.*|host|content-length|content-type|transfer-encoding|connection|keep-alive|upgrade|te|trailer|proxy-.*|mcp-session-id|mcp-protocol-version|last-event-id|accept)$/i;

const stringArray = z.array(z.string({ error: 'expected a string' }), { error: 'expected an array of strings' });
const stringMap = z.record(z.string(), z.string({ error: 'expected a string value' }), { error: 'expected an object of string values' });

const serverSchema = z.looseObject({
  command: z.string({ error: 'expected a string' }).min(1, 'must not be empty').optional(),
  args: stringArray.optional(),
  env: stringMap.optional(),
  cwd: z.string({ error: 'expected a string' }).min(1, 'must not be empty').optional(),
  url: z.string({ error: 'expected a string' }).optional(),
  headers: stringMap.optional(),
  path: z.string({ error: 'expected a string' }).optional(),
  scopes: stringArray.min(1, 'must list at least one scope').optional(),
  tools: z
    .union([z.strictObject({ allow: stringArray }), z.strictObject({ deny: stringArray })], {
      error: 'expected {"allow": [...]} or {"deny": [...]}',
    })
    .optional(),
  type: z.unknown().optional(),
  disabled: z.boolean({ error: 'expected true or false' }).optional(),
});

const fileSchema = z.looseObject({
  mcpServers: z.record(z.string(), z.unknown(), { error: 'expected an object of servers' }),
});

function fail(file: string, where: string, message: string): never {
  throw new GatewayConfigError(`OAUTH_GATEWAY_CONFIG (${file}): ${where}${message}`);
}

function firstIssue(error: z.ZodError): { key: string; message: string } {
  const issue = error.issues[0];
  const key = (issue?.path ?? []).map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
  return { key, message: issue?.message ?? 'invalid value' };
}

/** Reads and checks the file; every problem is a {@link GatewayConfigError} with one line. */
export async function loadGatewayFile(file: string, policy: GatewayFilePolicy): Promise<GatewayFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(file, '', code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? String(err)})`);
  }
  return parseGatewayFile(text, file, policy);
}

export function parseGatewayFile(text: string, file: string, policy: GatewayFilePolicy): GatewayFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(file, '', `is not valid JSON (${(err as Error).message})`);
  }
  const top = fileSchema.safeParse(json);
  if (!top.success) {
    const { key, message } = firstIssue(top.error);
    fail(file, key ? `key "${key}": ` : '', key ? message : 'expected an object with "mcpServers"');
  }

  const servers: GatewayServerConfig[] = [];
  const ignoredKeys: string[] = [];
  const disabled: string[] = [];
  const seenPaths = new Map<string, string>();
  for (const [name, raw] of Object.entries(top.data.mcpServers)) {
    const where = (key?: string): string => `server "${name}"${key ? `, key "${key}"` : ''}: `;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(file, where(), 'expected an object');
    const parsed = serverSchema.safeParse(raw);
    if (!parsed.success) {
      const { key, message } = firstIssue(parsed.error);
      fail(file, where(key), message);
    }
    const s = parsed.data;
    for (const key of Object.keys(raw)) {
      if (OWN_KEYS.includes(key) || key === 'disabled') continue;
      if (FOREIGN_KEYS.has(key)) ignoredKeys.push(`${name}.${key}`);
      else fail(file, where(key), `unknown key (Latchkey reads ${OWN_KEYS.join(', ')})`);
    }
    if (s.disabled === true) {
      disabled.push(name);
      continue;
    }
    if (s.type === 'sse') {
      fail(file, where('type'), '"sse" (the old HTTP+SSE transport) is not supported: point "url" at the server\'s Streamable HTTP endpoint');
    }
    if ((s.command === undefined) === (s.url === undefined)) {
      fail(file, where(), 'set exactly one of "command" (a stdio server) or "url" (a Streamable HTTP server)');
    }

    const serverPath = s.path ?? (NAME_SYNTAX.test(name) ? `/${name}/mcp` : fail(file, where('path'), 'the name has characters a URL path cannot carry as is: set "path"'));
    if (!PATH_SYNTAX.test(serverPath) || serverPath.split('/').some((seg) => seg === '.' || seg === '..')) {
      fail(file, where('path'), `"${serverPath}" must start with "/" and use only letters, digits and . _ ~ - (no trailing slash)`);
    }
    const lower = serverPath.toLowerCase();
    const reserved = RESERVED.find((r) => lower === r.path || (r.below && lower.startsWith(`${r.path}/`)));
    if (reserved !== undefined) fail(file, where('path'), `"${serverPath}" collides with Latchkey's own endpoint ${reserved.path}`);
    const other = seenPaths.get(lower);
    if (other !== undefined) fail(file, where('path'), `"${serverPath}" is also the path of server "${other}"`);
    seenPaths.set(lower, name);

    const scopes = s.scopes ?? [...policy.defaultScopes];
    for (const scope of scopes) {
      if (!policy.validScopes.includes(scope)) fail(file, where('scopes'), `"${scope}" is not listed in OAUTH_VALID_SCOPES, so no token could carry it`);
    }
    const tools = s.tools;
    if (tools) {
      const patterns = 'allow' in tools ? tools.allow : tools.deny;
      if (patterns.some((p) => p.length === 0)) fail(file, where('tools'), 'a tool name or pattern must not be empty');
    }
    const common = { name, path: serverPath, scopes, ...(tools ? { tools } : {}) };

    if (s.command !== undefined) {
      if (s.headers !== undefined) fail(file, where('headers'), 'only a "url" server takes headers');
      for (const key of Object.keys(s.env ?? {})) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) fail(file, where('env'), `"${key}" is not a valid environment variable name`);
      }
      const cwd = s.cwd === undefined ? undefined : path.resolve(path.dirname(path.resolve(file)), s.cwd);
      servers.push({ ...common, kind: 'stdio', command: s.command, args: s.args ?? [], env: s.env ?? {}, ...(cwd ? { cwd } : {}) });
    } else {
      for (const key of ['args', 'env', 'cwd'] as const) {
        if (s[key] !== undefined) fail(file, where(key), 'only a "command" server takes args, env and cwd');
      }
      const url = s.url ?? '';
      let parsedUrl: URL;
      try {
        parsedUrl = new URL(url);
      } catch {
        fail(file, where('url'), 'is not an absolute URL');
      }
      if (parsedUrl.protocol !== 'http:' && parsedUrl.protocol !== 'https:') fail(file, where('url'), 'must be an http:// or https:// URL');
      if (parsedUrl.hash) fail(file, where('url'), 'must not contain a fragment');
      for (const [header, value] of Object.entries(s.headers ?? {})) {
        if (!HEADER_NAME.test(header)) fail(file, where('headers'), `"${header}" is not a valid header name`);
        if (FORBIDDEN_HEADERS.test(header)) fail(file, where('headers'), `"${header}" is set by the gateway itself`);
        // Values are never echoed: they are often API keys.
        if (/[\r\n\0]/.test(value)) fail(file, where('headers'), `the value of "${header}" contains a line break`);
      }
      servers.push({ ...common, kind: 'http', url, headers: s.headers ?? {} });
    }
  }
  return { servers, ignoredKeys, disabled };
}

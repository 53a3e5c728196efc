import { Router, type NextFunction, type Request, type Response } from 'express';

export interface ProtectedResourceOptions {
  /** This MCP server's URL as users paste it into their host, e.g. https://mcp.example.com/mcp. */
  resource: string;
  /** Latchkey's issuer, used verbatim: clients compare it with the metadata's `issuer` as a string. */
  issuer: string;
  /** The scopes this server understands; MCP clients request exactly these. */
  scopesSupported?: string[];
  /** A human-readable name (RFC 9728 §2). */
  resourceName?: string;
  resourceDocumentation?: string;
}

/** RFC 9728 §3: where a protected resource's metadata lives, before the resource's own path. */
export const PROTECTED_RESOURCE_WELL_KNOWN = '/.well-known/oauth-protected-resource';
const WELL_KNOWN = PROTECTED_RESOURCE_WELL_KNOWN;

/** The RFC 9728 §2 document. Only fields with a value are present: some clients fail on null. */
export function protectedResourceMetadata(options: ProtectedResourceOptions): Record<string, unknown> {
  return {
    resource: options.resource,
    authorization_servers: [options.issuer],
    bearer_methods_supported: ['header'],
    ...(options.scopesSupported ? { scopes_supported: options.scopesSupported } : {}),
    ...(options.resourceName ? { resource_name: options.resourceName } : {}),
    ...(options.resourceDocumentation ? { resource_documentation: options.resourceDocumentation } : {}),
  };
}

/**
 * Where the metadata of `resource` lives: RFC 9728 §3.1 inserts the well-known segment
 * between the host and the path, so https://mcp.example.com/mcp has its metadata at
 * https://mcp.example.com/.well-known/oauth-protected-resource/mcp. This is the URL to put
 * into `WWW-Authenticate: Bearer resource_metadata="…"` (RFC 9728 §5.1).
 */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname === '/' ? '' : url.pathname;
  return `${url.origin}${WELL_KNOWN}${path}`;
}

/** The paths this server answers: the path-aware one, and the bare one older clients try first. */
export function protectedResourceMetadataPaths(resource: string): string[] {
  const path = new URL(resource).pathname;
  return path === '/' || path === '' ? [WELL_KNOWN] : [`${WELL_KNOWN}${path}`, WELL_KNOWN];
}

/**
 * An Express router serving the protected-resource metadata with CORS, because browser
 * clients such as the MCP Inspector fetch it directly. Mount it at the root of the app.
 */
export function protectedResourceMetadataRouter(options: ProtectedResourceOptions): Router {
  const router = Router();
  const body = protectedResourceMetadata(options);
  const cors = (req: Request, res: Response, next: NextFunction): void => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, mcp-protocol-version');
      res.status(204).end();
      return;
    }
    next();
  };
  for (const path of protectedResourceMetadataPaths(options.resource)) {
    router.options(path, cors);
    router.get(path, cors, (_req: Request, res: Response) => {
      res.setHeader('Cache-Control', 'public, max-age=300');
      res.json(body);
    });
  }
  return router;
}

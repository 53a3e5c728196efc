/**
 * Every endpoint Latchkey serves, in one table. The routers mount at these paths, the
 * authorization server metadata advertises the ones with a `metadataField` (RFC 8414 §2), and
 * the app routes the JSON endpoints by these exact paths. Adding an endpoint starts here.
 * `subtree`: Latchkey also serves paths below it (/admin/audit, /login/callback/<provider>),
 * so the gateway file may take none of them.
 */
export const ENDPOINTS = {
  metadata: { path: '/.well-known/oauth-authorization-server' },
  authorization: { path: '/authorize', metadataField: 'authorization_endpoint', subtree: true },
  consent: { path: '/authorize/consent' },
  /** POST /login/start/<provider>: a consent page's "Continue with …" button (issue 12). */
  signInStart: { path: '/login/start', subtree: true },
  /** GET /login/callback/<provider>: where a provider sends the browser back; registered at the provider. */
  signInCallback: { path: '/login/callback', subtree: true },
  /** A person's own connections, after signing in with a provider. */
  account: { path: '/account', subtree: true },
  token: { path: '/token', metadataField: 'token_endpoint' },
  registration: { path: '/register', metadataField: 'registration_endpoint' },
  revocation: { path: '/revoke', metadataField: 'revocation_endpoint' },
  introspection: { path: '/introspect', metadataField: 'introspection_endpoint' },
  stats: { path: '/oauth/stats' },
  /** `/health` too: the name many monitors try first. */
  health: { path: '/healthz', aliases: ['/health'] },
  admin: { path: '/admin', subtree: true },
  assets: { path: '/assets', subtree: true },
  metrics: { path: '/metrics' },
} as const satisfies Record<string, { path: string; metadataField?: string; aliases?: readonly string[]; subtree?: true }>;

export type EndpointName = keyof typeof ENDPOINTS;

/** Each endpoint's paths, its aliases included, by name: every path Latchkey itself answers at. */
export function endpointPaths(): [EndpointName, string][] {
  return (Object.entries(ENDPOINTS) as [EndpointName, (typeof ENDPOINTS)[EndpointName]][]).flatMap(([name, endpoint]) =>
    [endpoint.path, ...('aliases' in endpoint ? endpoint.aliases : [])].map((p): [EndpointName, string] => [name, p]),
  );
}

/** Whether Latchkey serves paths below this endpoint's (see `subtree`). */
export const hasSubtree = (name: EndpointName): boolean => 'subtree' in ENDPOINTS[name];

/** The absolute URL of each endpoint the metadata advertises, keyed by its metadata field. */
export function advertisedEndpoints(issuer: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const endpoint of Object.values(ENDPOINTS)) {
    if ('metadataField' in endpoint) out[endpoint.metadataField] = `${issuer}${endpoint.path}`;
  }
  return out;
}

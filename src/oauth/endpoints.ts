/**
 * Every endpoint Latchkey serves, in one table. The routers mount at these paths, the
 * authorization server metadata advertises the ones with a `metadataField` (RFC 8414 §2), and
 * the app routes the JSON endpoints by these exact paths. Adding an endpoint starts here.
 */
export const ENDPOINTS = {
  metadata: { path: '/.well-known/oauth-authorization-server' },
  authorization: { path: '/authorize', metadataField: 'authorization_endpoint' },
  consent: { path: '/authorize/consent' },
  /** POST /login/start/<provider>: a consent page's "Continue with …" button (issue 12). */
  signInStart: { path: '/login/start' },
  /** GET /login/callback/<provider>: where a provider sends the browser back; registered at the provider. */
  signInCallback: { path: '/login/callback' },
  /** A person's own connections, after signing in with a provider. */
  account: { path: '/account' },
  token: { path: '/token', metadataField: 'token_endpoint' },
  registration: { path: '/register', metadataField: 'registration_endpoint' },
  revocation: { path: '/revoke', metadataField: 'revocation_endpoint' },
  introspection: { path: '/introspect', metadataField: 'introspection_endpoint' },
  stats: { path: '/oauth/stats' },
  /** `/health` too: the name many monitors try first. */
  health: { path: '/healthz', aliases: ['/health'] },
  admin: { path: '/admin' },
  assets: { path: '/assets' },
  metrics: { path: '/metrics' },
} as const satisfies Record<string, { path: string; metadataField?: string; aliases?: readonly string[] }>;

export type EndpointName = keyof typeof ENDPOINTS;

/** Each endpoint's paths, its aliases included, by name: every path Latchkey itself answers at. */
export function endpointPaths(): [EndpointName, string][] {
  return (Object.entries(ENDPOINTS) as [EndpointName, (typeof ENDPOINTS)[EndpointName]][]).flatMap(([name, endpoint]) =>
    [endpoint.path, ...('aliases' in endpoint ? endpoint.aliases : [])].map((p): [EndpointName, string] => [name, p]),
  );
}

/** The absolute URL of each endpoint the metadata advertises, keyed by its metadata field. */
export function advertisedEndpoints(issuer: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const endpoint of Object.values(ENDPOINTS)) {
    if ('metadataField' in endpoint) out[endpoint.metadataField] = `${issuer}${endpoint.path}`;
  }
  return out;
}

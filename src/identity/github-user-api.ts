import { fetchProtectedResource, type Configuration } from 'openid-client';
import { z } from 'zod';

/**
 * Reads who a GitHub access token belongs to, from GitHub's REST API (docs.github.com/rest:
 * "Get the authenticated user", "List email addresses for the authenticated user", "Get an
 * organization membership for the authenticated user"). Requests go through openid-client's
 * fetchProtectedResource, so they carry the token as the library sends it and share its
 * timeout and transport rules.
 */

/** Only the fields Latchkey uses; GitHub sends many more. */
const userSchema = z.object({
  id: z.number().int().positive(),
  login: z.string().min(1),
  name: z.string().nullish(),
});

const emailsSchema = z.array(
  z.object({
    email: z.string().min(1),
    primary: z.boolean(),
    verified: z.boolean(),
  }),
);

const membershipSchema = z.object({
  state: z.string(),
  organization: z.object({ login: z.string().min(1) }),
});

export interface GithubUser {
  id: number;
  login: string;
  name?: string;
  /** The primary address and whether GitHub verified it. */
  primaryEmail?: { email: string; verified: boolean };
  /** Of the organisations asked about, those the user is an active member of. */
  orgs: string[];
}

/** A GitHub answer Latchkey cannot use: the status, for the log (5xx means GitHub is down). */
export class GithubApiError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
  ) {
    super(`GitHub API ${path} answered HTTP ${status}`);
    this.name = 'GithubApiError';
  }
}

/** GitHub's recommended request headers ("Getting started with the REST API"). */
function githubHeaders(): Headers {
  return new Headers({ accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
}

async function get(config: Configuration, accessToken: string, apiUrl: string, path: string): Promise<Response> {
  return fetchProtectedResource(config, accessToken, new URL(path, `${apiUrl}/`), 'GET', undefined, githubHeaders());
}

async function parse<T>(response: Response, path: string, schema: z.ZodType<T>): Promise<T> {
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new GithubApiError(response.status, path);
  }
  const parsed = schema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) throw new GithubApiError(response.status, `${path} (unexpected body)`);
  return parsed.data;
}

/**
 * Membership in `org`, active only (a pending invitation is not membership). GitHub answers
 * 404 when the user is not a member, and 403 when the organisation restricts OAuth app
 * access and has not approved this app: both mean "not a member, as far as Latchkey can tell".
 */
async function activeMembership(config: Configuration, accessToken: string, apiUrl: string, org: string): Promise<string | undefined> {
  const path = `user/memberships/orgs/${encodeURIComponent(org)}`;
  const response = await get(config, accessToken, apiUrl, path);
  if (response.status === 403 || response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  const membership = await parse(response, path, membershipSchema);
  return membership.state === 'active' ? membership.organization.login : undefined;
}

export async function readGithubUser(
  config: Configuration,
  accessToken: string,
  apiUrl: string,
  orgs: readonly string[],
): Promise<GithubUser> {
  const [user, emails, memberships] = await Promise.all([
    get(config, accessToken, apiUrl, 'user').then((r) => parse(r, 'user', userSchema)),
    get(config, accessToken, apiUrl, 'user/emails').then((r) => parse(r, 'user/emails', emailsSchema)),
    Promise.all(orgs.map((org) => activeMembership(config, accessToken, apiUrl, org))),
  ]);
  const primary = emails.find((e) => e.primary);
  return {
    id: user.id,
    login: user.login,
    ...(user.name ? { name: user.name } : {}),
    ...(primary !== undefined ? { primaryEmail: { email: primary.email, verified: primary.verified } } : {}),
    orgs: memberships.filter((login): login is string => login !== undefined),
  };
}

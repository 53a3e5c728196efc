import type { ClientRecord } from '../store/types.js';
import { isLoopbackHttp } from '../net/loopback.js';

/**
 * Whether an error or a denial may go back to a client's redirect URI without a person
 * deciding. Registration is open, so a redirect URI alone proves nothing: a stranger can
 * register https://evil.example/ and make links on this server's domain that bounce there
 * with an error (RFC 9700 §4.11.2, open redirector). Automatic only for:
 * - loopback http (the user's own machine: Claude Code, the MCP Inspector);
 * - a client the owner has approved before;
 * - an https host the owner lists in OAUTH_TRUSTED_REDIRECT_HOSTS (by default the hosts
 *   ChatGPT and Claude use), compared exactly, case-insensitively.
 * Anything else gets a page with a plain link to the client: a person decides.
 */
export function redirectsAutomatically(redirectUri: string, client: Pick<ClientRecord, 'approvedAt'>, trustedHosts: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(redirectUri);
  } catch {
    return false;
  }
  if (isLoopbackHttp(url)) return true;
  if (client.approvedAt !== undefined) return true;
  return url.protocol === 'https:' && trustedHosts.includes(url.hostname.toLowerCase());
}

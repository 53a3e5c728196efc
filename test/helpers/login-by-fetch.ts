/**
 * Drives the sign-in page of a test identity provider (test/helpers/oidc-idp.ts or
 * test/helpers/github-standin.ts) the way a browser would, with plain fetch and a cookie jar:
 * follow redirects on the provider's origin, submit its one form, and stop at the first
 * redirect that leaves the provider. That URL (the relying party's callback with `code`,
 * `state`, or `error`) is returned unfollowed, so no relying party has to listen.
 */

/** The form both test providers render; a Chromium test fills the same fields. */
export const LOGIN_FORM = {
  /** The account to sign in as: an OIDC account id, or a GitHub login. */
  login: 'input[name="login"]',
  /** Signs in and approves the relying party. */
  approve: 'button[name="action"][value="approve"]',
  /** Refuses: the provider sends the person back with error=access_denied. */
  deny: 'button[name="action"][value="deny"]',
} as const;

export type LoginAction = 'approve' | 'deny';

class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';', 1)[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      // An expired or emptied cookie is the server deleting it.
      if (value === '' || /;\s*max-age=0/i.test(line) || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): Record<string, string> {
    if (this.cookies.size === 0) return {};
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }
}

/**
 * Starts at `startUrl` (an authorization URL) on `providerOrigin`, submits the sign-in form
 * with `login` and `action`, and returns the URL the provider redirects to off its origin.
 */
export async function loginByFetch(
  startUrl: string,
  providerOrigin: string,
  login: string,
  action: LoginAction = 'approve',
): Promise<URL> {
  const jar = new CookieJar();
  let url = new URL(startUrl);
  let submitted = false;
  for (let hop = 0; hop < 20; hop++) {
    const response = await fetch(url, { redirect: 'manual', headers: jar.header(), signal: AbortSignal.timeout(20_000) });
    jar.store(response);
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel();
      const next = new URL(location, url);
      if (next.origin !== providerOrigin) return next;
      url = next;
      continue;
    }
    const body = await response.text();
    const form = /<form[^>]*action="([^"]+)"/.exec(body);
    if (response.status !== 200 || form?.[1] === undefined || submitted) {
      throw new Error(`the provider answered ${response.status} at ${url.pathname}: ${body.slice(0, 300)}`);
    }
    submitted = true;
    const post = await fetch(new URL(form[1].replaceAll('&amp;', '&'), url), {
      method: 'POST',
      redirect: 'manual',
      headers: { ...jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ login, action }).toString(),
      signal: AbortSignal.timeout(20_000),
    });
    jar.store(post);
    const after = post.headers.get('location');
    if (after === null) throw new Error(`the sign-in form answered ${post.status}: ${(await post.text()).slice(0, 300)}`);
    await post.body?.cancel();
    const next = new URL(after, url);
    if (next.origin !== providerOrigin) return next;
    url = next;
  }
  throw new Error(`too many redirects from ${startUrl}`);
}

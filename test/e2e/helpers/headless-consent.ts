/**
 * What a person does in the browser, done with fetch: open the authorization URL, read the
 * CSRF cookie and the signed `consent` field from the consent page, and post the PIN with
 * decision=approve. Returns the parameters of the redirect back to the client.
 */
export async function approveHeadlessly(authorizationUrl: URL | string, pin: string): Promise<URLSearchParams> {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`consent page answered ${page.status}: ${html.slice(0, 500)}`);
  const cookie = page.headers
    .getSetCookie()
    .map((c) => c.split(';')[0] ?? '')
    .find((c) => c.startsWith('latchkey_csrf='));
  const consent = /name="consent" value="([^"]+)"/.exec(html)?.[1];
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!cookie || !consent || !action) throw new Error('the consent page lacks the CSRF cookie, the consent field or the form');

  const response = await fetch(new URL(action, authorizationUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
    body: new URLSearchParams({ consent, pin, decision: 'approve' }).toString(),
    redirect: 'manual',
  });
  const location = response.headers.get('location');
  if (response.status !== 303 || !location) {
    throw new Error(`consent answered ${response.status}: ${(await response.text()).slice(0, 500)}`);
  }
  return new URL(location).searchParams;
}

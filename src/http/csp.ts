/**
 * The one Content-Security-Policy of every page and response: nothing but our own stylesheet,
 * images and forms, never framed (clickjacking), no <base>. The consent page widens
 * form-action by the client's redirect target (see {@link cspHeader}).
 */
export const CSP_DIRECTIVES = {
  defaultSrc: ["'none'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
} as const;

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The policy as a header value. `formActionExtra` is added to form-action: Chrome applies
 * form-action to the redirect that follows a form post, so the consent form must also allow
 * the client's redirect target, and a sign-in button the provider it leads to.
 */
export function cspHeader(...formActionExtra: string[]): string {
  return Object.entries(CSP_DIRECTIVES)
    .map(([name, values]) => {
      const all = name === 'formAction' ? [...new Set([...values, ...formActionExtra])] : values;
      return `${kebab(name)} ${all.join(' ')}`;
    })
    .join(';'); // helmet's serialization, so every response carries the same bytes
}

/**
 * Every configuration variable the daemon reads is documented where users look for it: a line
 * in .env.example and a row of the README's configuration table. A variable added to the
 * schema without its documentation fails here.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

/** The variables of the config schema (its keys) and of the sign-in settings (read by name). */
function variables(): string[] {
  const schema = [...read('src/config.ts').matchAll(/^ {4}((?:OAUTH_[A-Z0-9_]+)|PORT|HOST|TRUST_PROXY|LOG_LEVEL):/gm)].map((m) => m[1] ?? '');
  const identity = [...read('src/identity/identity-config.ts').matchAll(/get\('(OAUTH_[A-Z0-9_]+)'\)/g)].map((m) => m[1] ?? '');
  return [...new Set([...schema, ...identity])].sort();
}

describe('configuration variables', () => {
  const all = variables();

  it('are found in the schema and the sign-in settings', () => {
    expect(all.length).toBeGreaterThan(50);
    expect(all).toEqual(expect.arrayContaining(['PORT', 'OAUTH_ISSUER_URL', 'OAUTH_DATABASE_URL', 'OAUTH_GATEWAY_CONFIG', 'OAUTH_OIDC_ISSUER', 'OAUTH_AUDIT_RETENTION']));
  });

  it('each has a line in .env.example', () => {
    const example = read('.env.example');
    expect(all.filter((name) => !new RegExp(`^#? ?${name}=`, 'm').test(example))).toEqual([]);
  });

  it("each has a row in the README's configuration table", () => {
    const readme = read('README.md');
    expect(all.filter((name) => !readme.includes(`| \`${name}\` |`))).toEqual([]);
  });
});

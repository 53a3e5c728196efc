import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('package exports', () => {
  it('resolves latchkey/resource-server to the built kit (run after npm run build)', () => {
    const out = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "const m = await import('latchkey/resource-server'); console.log(Object.keys(m).sort().join(','))"],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(out.trim().split(',')).toEqual(
      expect.arrayContaining(['IntrospectionTokenVerifier', 'latchkeyBearerAuth', 'protectedResourceMetadataRouter', 'protectedResourceMetadataUrl']),
    );
  });
});

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CONSENT_KEY_FILE, loadConsentKey } from '../../../src/store/file/consent-key.js';
import { cryptoRandom } from '../../../src/crypto/secrets.js';
import { removeDir, tempDir } from '../../helpers/unit-context.js';

describe('loadConsentKey', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('latchkey-key-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('creates a 32-byte key in a 0600 file and returns the same key after a restart', async () => {
    const key = await loadConsentKey(dir, cryptoRandom);
    expect(key).toHaveLength(32);
    const file = path.join(dir, CONSENT_KEY_FILE);
    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
    const again = await loadConsentKey(dir, cryptoRandom);
    expect(again.equals(key)).toBe(true);
  });

  it('replaces a key file that is too short to be a real key', async () => {
    const file = path.join(dir, CONSENT_KEY_FILE);
    await fsp.writeFile(file, Buffer.alloc(8, 1).toString('base64url'));
    const key = await loadConsentKey(dir, cryptoRandom);
    expect(key).toHaveLength(32);
    expect((await fsp.readFile(file, 'utf8')).trim()).toBe(key.toString('base64url'));
  });
});

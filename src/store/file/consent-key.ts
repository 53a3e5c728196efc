import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { RandomSource } from '../../crypto/secrets.js';
import { nodeFsOps, writeFileAtomic } from './atomic-file.js';

export const CONSENT_KEY_FILE = 'consent.key';

/**
 * The key that signs pending consent forms, kept in the data directory (mode 0600) so a
 * consent page open across a restart still verifies. Created on first start.
 */
export async function loadConsentKey(dataDir: string, random: RandomSource): Promise<Buffer> {
  const file = path.join(dataDir, CONSENT_KEY_FILE);
  try {
    const key = Buffer.from((await fsp.readFile(file, 'utf8')).trim(), 'base64url');
    if (key.length >= 32) return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = random(32);
  await writeFileAtomic(nodeFsOps, file, key.toString('base64url'));
  return key;
}

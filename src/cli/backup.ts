import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CONSENT_KEY_FILE } from '../consent-key.js';
import { FILES, parseDataFile, type CollectionName } from '../store/file-store.js';
import type { CliIo } from './io.js';

/** How long the files must stay unchanged between the two reads of a snapshot. */
const SETTLE_MS = 200;
const MAX_TRIES = 20;
export const BACKUP_MANIFEST = 'latchkey-backup.json';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function readAll(dir: string, names: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of names) {
    try {
      out.set(name, await fsp.readFile(path.join(dir, name)));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

function same(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, buf] of a) if (!b.get(name)?.equals(buf)) return false;
  return true;
}

/**
 * `latchkey backup <dir>`: a consistent snapshot of the data directory, safe while the
 * daemon runs. Each file is always complete on disk, because the daemon replaces files by
 * rename. One change can touch several files, though (a code exchange writes codes.json,
 * tokens.json and refresh_tokens.json), so the files are read twice, SETTLE_MS apart, until
 * both reads agree: then no change was half-way through. Every file is then parsed exactly
 * as the daemon would, and the copy is written (mode 0600, fsync'd) into a new directory
 * `<dir>/latchkey-backup-<time>` with a manifest of checksums.
 */
export async function backup(io: CliIo, dataDir: string, targetParent: string): Promise<number> {
  const source = path.resolve(io.cwd, dataDir);
  const names = [...Object.values(FILES), CONSENT_KEY_FILE];

  let snapshot: Map<string, Buffer> | undefined;
  for (let attempt = 0; attempt < MAX_TRIES && !snapshot; attempt++) {
    const first = await readAll(source, names);
    await sleep(SETTLE_MS);
    const second = await readAll(source, names);
    if (same(first, second)) snapshot = second;
  }
  if (!snapshot) {
    io.err(`latchkey backup: ${source} kept changing for ${(MAX_TRIES * SETTLE_MS) / 1000} s; try again in a quieter moment\n`);
    return 1;
  }
  if (snapshot.size === 0) {
    io.err(`latchkey backup: no Latchkey data in ${source}; check OAUTH_DATA_DIR (or pass --data-dir)\n`);
    return 1;
  }

  const counts: Record<string, number> = {};
  for (const name of Object.keys(FILES) as CollectionName[]) {
    const buf = snapshot.get(FILES[name]);
    if (!buf) continue;
    const parsed = parseDataFile(name, buf.toString('utf8'));
    if (!parsed.ok) {
      io.err(`latchkey backup: ${FILES[name]} does not parse (${parsed.reason}); nothing was written. Run latchkey doctor.\n`);
      return 1;
    }
    counts[name] = parsed.records.length;
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const target = path.resolve(io.cwd, targetParent, `latchkey-backup-${stamp}`);
  await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  await fsp.mkdir(target, { mode: 0o700 });
  const manifest = {
    createdAt: new Date().toISOString(),
    source,
    files: Object.fromEntries([...snapshot].map(([name, buf]) => [name, { sha256: sha256(buf), bytes: buf.length }])),
    counts,
  };
  for (const [name, buf] of [...snapshot, [BACKUP_MANIFEST, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)] as const]) {
    const handle = await fsp.open(path.join(target, name), 'wx', 0o600);
    try {
      await handle.writeFile(buf);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  const dirHandle = await fsp.open(target, 'r');
  await dirHandle.sync().finally(() => dirHandle.close());

  io.out(`${target}\n`);
  io.err(
    `latchkey backup: ${snapshot.size} files (${counts.clients ?? 0} clients, ${counts.accessTokens ?? 0} access tokens, ${counts.refreshTokens ?? 0} refresh tokens) copied from ${source}\n`,
  );
  return 0;
}

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { FILES, type CollectionName } from '../store/file/collections.js';
import { AUDIT_DIR, readAuditDays } from '../store/file/audit-log.js';
import { CONSENT_KEY_FILE } from '../store/file/consent-key.js';
import { readDataDirSettled, type DataDirState } from '../store/file/data-dir.js';
import { serializeSnapshot } from '../store/file/snapshot.js';
import type { CliIo } from './io.js';

export const BACKUP_MANIFEST = 'latchkey-backup.json';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * `latchkey backup <dir>`: a consistent snapshot of the data directory, safe while the
 * daemon runs. The state is read as the daemon reads it at startup (the snapshot files,
 * then the journal replayed after them; see docs/storage.md), and read again if a
 * compaction ran in the middle. The copy is written (mode 0600, fsync'd) into a new
 * directory `<dir>/latchkey-backup-<time>`: the snapshot files holding the whole state at
 * one journal sequence number (no journal files needed), the consent key, the audit log's
 * day files (whole lines only) under `audit/`, and a manifest of checksums and counts. To
 * restore, stop the daemon and copy these files into an empty data directory.
 */
export async function backup(io: CliIo, dataDir: string, targetParent: string): Promise<number> {
  const source = path.resolve(io.cwd, dataDir);

  let state: DataDirState | undefined;
  try {
    // A snapshot that does not parse comes back as it is: reported below.
    state = await readDataDirSettled(source);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      io.err(`latchkey backup: ${(err as Error).message}; run it as the user that runs Latchkey\n`);
      return 1;
    }
  }
  if (!state) {
    const exists = await fsp.stat(source).then(
      () => true,
      () => false,
    );
    if (!exists) {
      io.err(`latchkey backup: no Latchkey data in ${source}; check OAUTH_DATA_DIR (or pass --data-dir)\n`);
      return 1;
    }
    io.err(`latchkey backup: ${source} kept changing under compaction; try again in a quieter moment\n`);
    return 1;
  }
  const present = Object.values(state.snapshots).some((s) => s.status !== 'missing' && !(s.status === 'ok' && s.absent)) || state.journals.length > 0;
  if (!present) {
    io.err(`latchkey backup: no Latchkey data in ${source}; check OAUTH_DATA_DIR (or pass --data-dir)\n`);
    return 1;
  }
  for (const name of Object.keys(FILES) as CollectionName[]) {
    const snapshot = state.snapshots[name];
    if (snapshot.status === 'bad') {
      io.err(`latchkey backup: ${FILES[name]} does not parse (${snapshot.reason}); nothing was written. Run latchkey doctor.\n`);
      return 1;
    }
  }
  const damaged = state.journals.filter((j) => j.corrupt.length > 0).map((j) => j.file);
  if (damaged.length > 0) {
    io.err(`latchkey backup: ${damaged.join(', ')} has damaged records; nothing was written. Run latchkey doctor.\n`);
    return 1;
  }

  const files = new Map<string, Buffer>();
  const counts: Record<string, number> = {};
  for (const name of Object.keys(FILES) as CollectionName[]) {
    const records = state.collections[name];
    files.set(FILES[name], Buffer.from(serializeSnapshot(state.seq, records.values()), 'utf8'));
    counts[name] = records.size;
  }
  try {
    files.set(CONSENT_KEY_FILE, await fsp.readFile(path.join(source, CONSENT_KEY_FILE)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const auditDays = await readAuditDays(path.join(source, AUDIT_DIR));
  for (const { file, text } of auditDays) files.set(`${AUDIT_DIR}/${file}`, Buffer.from(text, 'utf8'));

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const target = path.resolve(io.cwd, targetParent, `latchkey-backup-${stamp}`);
  await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  await fsp.mkdir(target, { mode: 0o700 });
  if (auditDays.length > 0) await fsp.mkdir(path.join(target, AUDIT_DIR), { mode: 0o700 });
  const manifest = {
    createdAt: new Date().toISOString(),
    source,
    seq: state.seq,
    files: Object.fromEntries([...files].map(([name, buf]) => [name, { sha256: sha256(buf), bytes: buf.length }])),
    counts,
  };
  for (const [name, buf] of [...files, [BACKUP_MANIFEST, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)] as const]) {
    const handle = await fsp.open(path.join(target, name), 'wx', 0o600);
    try {
      await handle.writeFile(buf);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  for (const dir of auditDays.length > 0 ? [path.join(target, AUDIT_DIR), target] : [target]) {
    const dirHandle = await fsp.open(dir, 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
  }

  io.out(`${target}\n`);
  io.err(
    `latchkey backup: ${files.size} files (${counts.clients ?? 0} clients, ${counts.accessTokens ?? 0} access tokens, ${counts.refreshTokens ?? 0} refresh tokens, at journal sequence ${state.seq}) copied from ${source}\n`,
  );
  return 0;
}

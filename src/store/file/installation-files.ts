import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Installation } from '../installation.js';
import { auditEventSchema, type AccessTokenRecord, type AuditEvent, type ClientRecord, type CodeRecord, type KvEntry, type RefreshTokenRecord } from '../records.js';
import { StoreOpenError } from '../types.js';
import { nodeFsOps, writeFileAtomic } from './atomic-file.js';
import { AUDIT_DIR, auditDayFile, readAuditDays } from './audit-log.js';
import { COLLECTIONS, FILES, type FileRecord } from './collections.js';
import { CONSENT_KEY_FILE } from './consent-key.js';
import { prepareDataDir, readDataDir, readDataDirSettled } from './data-dir.js';
import { JOURNAL_PATTERN } from './journal.js';
import { serializeSnapshot } from './snapshot.js';

/**
 * A whole installation in the file layout (docs/storage.md), read and written without the
 * daemon's store: `latchkey export` reads a data directory with it (safe while a daemon runs:
 * the state is read as at a restart) and writes the export directory with it, which is itself
 * such a layout; `latchkey import` writes a data directory with it, holding the directory's
 * lock so no daemon runs on it meanwhile.
 */

/** The installation in `dir`, or undefined if there is no such directory. Refuses a directory whose files do not parse. */
export async function readInstallationFiles(dir: string): Promise<Installation | undefined> {
  let state: Awaited<ReturnType<typeof readDataDirSettled>>;
  try {
    state = await readDataDirSettled(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!state) throw new StoreOpenError(`${dir} kept changing under compaction while it was read; try again in a quieter moment`);
  for (const name of COLLECTIONS) {
    const snapshot = state.snapshots[name];
    if (snapshot.status === 'bad') throw new StoreOpenError(`${path.join(dir, FILES[name])} does not parse (${snapshot.reason}); run latchkey doctor`);
  }
  const damaged = state.journals.filter((j) => j.corrupt.length > 0).map((j) => j.file);
  if (damaged.length > 0) throw new StoreOpenError(`${damaged.join(', ')} in ${dir} has damaged records; run latchkey doctor`);

  const audit: AuditEvent[] = [];
  for (const { file, text } of await readAuditDays(path.join(dir, AUDIT_DIR))) {
    for (const [i, line] of text.split('\n').slice(0, -1).entries()) {
      let parsed: ReturnType<typeof auditEventSchema.safeParse> | undefined;
      try {
        parsed = auditEventSchema.safeParse(JSON.parse(line));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) throw new StoreOpenError(`${path.join(dir, AUDIT_DIR, file)} line ${i + 1} is not an audit event`);
      audit.push(parsed.data);
    }
  }

  let consentKey: Buffer | undefined;
  try {
    const key = Buffer.from((await fsp.readFile(path.join(dir, CONSENT_KEY_FILE), 'utf8')).trim(), 'base64url');
    if (key.length >= 32) consentKey = key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }

  const { collections } = state;
  return {
    clients: [...collections.clients.values()] as ClientRecord[],
    codes: [...collections.codes.values()] as CodeRecord[],
    accessTokens: [...collections.accessTokens.values()] as AccessTokenRecord[],
    refreshTokens: [...collections.refreshTokens.values()] as RefreshTokenRecord[],
    kv: [...collections.kv.values()] as KvEntry[],
    audit,
    consentKey,
  };
}

/**
 * Makes `dir` hold exactly `data`: every snapshot file, the consent key (kept as it is when
 * `data` has none), the audit log's day files; journals and day files of what was there before
 * are deleted. The new snapshots are written at a sequence number above every journal record
 * already in the directory, so a journal left over is ignored even before it is deleted. The
 * caller holds the directory's lock (no daemon may run on it).
 */
export async function writeInstallationFiles(dir: string, data: Installation): Promise<void> {
  await prepareDataDir(dir);
  const before = await readDataDir(dir);
  const seq = before.seq + 1;
  const records: Record<(typeof COLLECTIONS)[number], FileRecord[]> = {
    clients: data.clients,
    codes: data.codes,
    accessTokens: data.accessTokens,
    refreshTokens: data.refreshTokens,
    kv: data.kv,
  };
  for (const name of COLLECTIONS) await writeFileAtomic(nodeFsOps, path.join(dir, FILES[name]), serializeSnapshot(seq, records[name]));
  if (data.consentKey) await writeFileAtomic(nodeFsOps, path.join(dir, CONSENT_KEY_FILE), data.consentKey.toString('base64url'));
  for (const journal of before.journals) await fsp.unlink(path.join(dir, journal.file)).catch(() => undefined);
  for (const entry of await fsp.readdir(dir)) if (JOURNAL_PATTERN.test(entry)) await fsp.unlink(path.join(dir, entry)).catch(() => undefined);
  await nodeFsOps.fsyncDir(dir);

  const auditDir = path.join(dir, AUDIT_DIR);
  for (const { file } of await readAuditDays(auditDir)) await fsp.unlink(path.join(auditDir, file));
  const days = new Map<string, string[]>();
  for (const event of data.audit) {
    const file = auditDayFile(event.at);
    const lines = days.get(file) ?? [];
    lines.push(`${JSON.stringify(event)}\n`);
    days.set(file, lines);
  }
  if (days.size > 0) {
    await fsp.mkdir(auditDir, { recursive: true, mode: 0o700 });
    for (const [file, lines] of days) await writeFileAtomic(nodeFsOps, path.join(auditDir, file), lines.join(''));
  }
}

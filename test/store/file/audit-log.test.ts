import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { FileAuditLog } from '../../../src/store/file/audit-log.js';
import { nodeFsOps } from '../../../src/store/file/atomic-file.js';
import { StoreUnavailableError } from '../../../src/store/types.js';
import { faultyFs } from '../../helpers/faulty-fs.js';
import { removeDir, silentLogger, tempDir } from '../../helpers/unit-context.js';

/** The file audit log's own promises: one private file per UTC day, and kill -9 never costs an acknowledged event. */

const NOW = Date.UTC(2026, 0, 1, 12);
const DAY = 86_400_000;

describe('FileAuditLog', () => {
  let dataDir: string;
  let dir: string;
  beforeEach(async () => {
    dataDir = await tempDir('latchkey-audit-');
    dir = path.join(dataDir, 'audit');
  });
  afterEach(async () => {
    await removeDir(dataDir);
  });

  it('writes one 0600 JSON-lines file per UTC day of the events, in a 0700 directory made on first use', async () => {
    const log = new FileAuditLog(dir, nodeFsOps, silentLogger());
    expect(await log.list({ limit: 10 })).toEqual([]);
    await expect(fsp.access(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    await log.append({ at: NOW, type: 'a' });
    await log.append({ at: NOW + DAY, type: 'b', detail: { n: 1, ok: true, ids: ['x'] } });
    await log.close();
    expect((await fsp.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fsp.readdir(dir)).sort()).toEqual(['2026-01-01.jsonl', '2026-01-02.jsonl']);
    expect((await fsp.stat(path.join(dir, '2026-01-01.jsonl'))).mode & 0o777).toBe(0o600);
    expect(await fsp.readFile(path.join(dir, '2026-01-02.jsonl'), 'utf8')).toBe('{"at":1767355200000,"type":"b","detail":{"n":1,"ok":true,"ids":["x"]}}\n');
  });

  it('skips a torn last line left by a crash, and the next append cuts it off instead of joining it', async () => {
    const first = new FileAuditLog(dir, nodeFsOps, silentLogger());
    await first.append({ at: NOW, type: 'kept' });
    await first.close();
    const file = path.join(dir, '2026-01-01.jsonl');
    await fsp.appendFile(file, '{"at":1767268800001,"type":"never-ackn');

    const second = new FileAuditLog(dir, nodeFsOps, silentLogger());
    expect(await second.list({ limit: 10 })).toEqual([{ at: NOW, type: 'kept' }]);
    await second.append({ at: NOW + 2, type: 'after' });
    expect(await second.list({ limit: 10 })).toEqual([
      { at: NOW + 2, type: 'after' },
      { at: NOW, type: 'kept' },
    ]);
    await second.close();
    expect((await fsp.readFile(file, 'utf8')).split('\n')).toHaveLength(3);
  });

  it('refuses events when the disk fails, leaves nothing of them behind, and works again once it heals', async () => {
    const faults = faultyFs();
    const log = new FileAuditLog(dir, faults.fs, silentLogger());
    await log.append({ at: NOW, type: 'before' });
    faults.fail('fsync', 'EIO');
    await expect(log.append({ at: NOW + 1, type: 'refused' })).rejects.toBeInstanceOf(StoreUnavailableError);
    faults.fail(undefined);
    await log.append({ at: NOW + 2, type: 'after' });
    expect((await log.list({ limit: 10 })).map((e) => e.type)).toEqual(['after', 'before']);
    await log.close();
  });

  it('refuses what is not an audit event rather than write it', async () => {
    const log = new FileAuditLog(dir, nodeFsOps, silentLogger());
    await expect(log.append({ at: Number.NaN, type: 'x' })).rejects.toBeInstanceOf(TypeError);
    await expect(log.append({ at: NOW, type: 'x', detail: { nested: { no: 1 } } as never })).rejects.toBeInstanceOf(TypeError);
    expect(await log.list({ limit: 10 })).toEqual([]);
    await log.close();
  });
});

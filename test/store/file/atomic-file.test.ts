import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { nodeFsOps, writeFileAtomic, type FsOps } from '../../../src/store/file/atomic-file.js';
import { removeDir, tempDir } from '../../helpers/unit-context.js';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('latchkey-atomic-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('writes the content with mode 0600 and no temporary file left', async () => {
    const file = path.join(dir, 'x.json');
    await writeFileAtomic(nodeFsOps, file, '{"a":1}');
    expect(await fsp.readFile(file, 'utf8')).toBe('{"a":1}');
    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
    expect(await fsp.readdir(dir)).toEqual(['x.json']);
  });

  it('replaces an existing 0644 file and tightens it to 0600', async () => {
    const file = path.join(dir, 'x.json');
    await fsp.writeFile(file, 'old', { mode: 0o644 });
    await writeFileAtomic(nodeFsOps, file, 'new');
    expect(await fsp.readFile(file, 'utf8')).toBe('new');
    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
  });

  it('keeps the old content and removes the temporary file when a step before the rename fails', async () => {
    const file = path.join(dir, 'x.json');
    await fsp.writeFile(file, 'old');
    const order: string[] = [];
    const failing: FsOps = {
      ...nodeFsOps,
      write: async (handle, data, position) => {
        order.push('write');
        await nodeFsOps.write(handle, data.slice(0, 2), position);
        throw Object.assign(new Error('EIO'), { code: 'EIO' });
      },
      unlink: async (f) => {
        order.push('unlink');
        await nodeFsOps.unlink(f);
      },
    };
    await expect(writeFileAtomic(failing, file, 'new content')).rejects.toThrow('EIO');
    expect(order).toEqual(['write', 'unlink']);
    expect(await fsp.readFile(file, 'utf8')).toBe('old');
    expect(await fsp.readdir(dir)).toEqual(['x.json']);
  });

  it('fsyncs the file before the rename and the directory after it', async () => {
    const order: string[] = [];
    const traced: FsOps = {
      open: async (f, flags, mode) => {
        order.push('open');
        return nodeFsOps.open(f, flags, mode);
      },
      write: async (h, d, p) => {
        order.push('write');
        await nodeFsOps.write(h, d, p);
      },
      truncate: async (h, n) => {
        order.push('truncate');
        await nodeFsOps.truncate(h, n);
      },
      fsync: async (h) => {
        order.push('fsync');
        await nodeFsOps.fsync(h);
      },
      rename: async (a, b) => {
        order.push('rename');
        await nodeFsOps.rename(a, b);
      },
      fsyncDir: async (d) => {
        order.push('fsyncDir');
        await nodeFsOps.fsyncDir(d);
      },
      unlink: async (f) => {
        order.push('unlink');
        await nodeFsOps.unlink(f);
      },
    };
    await writeFileAtomic(traced, path.join(dir, 'y.json'), 'data');
    expect(order).toEqual(['open', 'write', 'fsync', 'rename', 'fsyncDir']);
  });

  it('writes a sequence of chunks in order, freeing the event loop between them', async () => {
    const file = path.join(dir, 'z.json');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const produced: number[] = [];
    function* chunks(): Generator<string> {
      for (let i = 0; i < 50; i++) {
        produced.push(ticks);
        yield `${i};`;
      }
    }
    await writeFileAtomic(nodeFsOps, file, chunks());
    clearInterval(timer);
    expect(await fsp.readFile(file, 'utf8')).toBe(Array.from({ length: 50 }, (_, i) => `${i};`).join(''));
    // Other callbacks ran while the chunks were produced: the write did not hold the loop.
    expect(produced.at(-1)).toBeGreaterThan(produced[0] ?? 0);
  });
});

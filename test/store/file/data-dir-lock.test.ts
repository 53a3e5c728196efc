import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../../src/store/file/data-dir-lock.js';

describe('lockDataDir', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'latchkey-lock-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('writes our pid with mode 0600 and removes the file on release', async () => {
    const release = await lockDataDir(dir);
    const file = path.join(dir, LOCK_FILE);
    expect((await fsp.readFile(file, 'utf8')).trim()).toBe(String(process.pid));
    expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
    await release();
    await expect(fsp.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses while another live node process holds the directory', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']);
    try {
      await fsp.writeFile(path.join(dir, LOCK_FILE), `${child.pid}\n`);
      await expect(lockDataDir(dir)).rejects.toBeInstanceOf(DataDirLockedError);
      await expect(lockDataDir(dir)).rejects.toThrow(`pid ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes over a lock left by a process that died (kill -9)', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    const pid = child.pid;
    await new Promise((resolve) => child.once('exit', resolve));
    await fsp.writeFile(path.join(dir, LOCK_FILE), `${pid}\n`);
    const release = await lockDataDir(dir);
    expect((await fsp.readFile(path.join(dir, LOCK_FILE), 'utf8')).trim()).toBe(String(process.pid));
    await release();
  });

  it('takes over a lock naming our own pid (a container restarted as pid 1) or garbage', async () => {
    await fsp.writeFile(path.join(dir, LOCK_FILE), `${process.pid}\n`);
    await (await lockDataDir(dir))();
    await fsp.writeFile(path.join(dir, LOCK_FILE), 'not a pid');
    await (await lockDataDir(dir))();
  });
});

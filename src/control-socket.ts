import { promises as fsp } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import type { Express } from 'express';
import { prepareDataDir } from './store/file/data-dir.js';
import { StoreOpenError } from './store/types.js';

export interface ControlSocket {
  close(): Promise<void>;
}

/** Whether something answers on a Unix socket (a live daemon), as opposed to a file left by a killed one. */
function answers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/**
 * Serves the control API (src/http/control-routes.ts) on a Unix socket only the daemon's user
 * can use: created under a 0177 umask (so 0600 from the first moment) in a directory that must
 * belong to that user and be writable by nobody else (the data directory by default;
 * OAUTH_CONTROL_SOCKET's directory is held to the same rules). A socket file left by a killed
 * daemon is replaced; a socket another live process answers on stops startup, as does any
 * failure to bind: a `latchkey revoke` must never talk to something else.
 */
export async function listenControl(app: Express, socketPath: string): Promise<ControlSocket> {
  await prepareDataDir(path.dirname(path.resolve(socketPath)), 'OAUTH_CONTROL_SOCKET');
  if (await answers(socketPath)) {
    throw new StoreOpenError(`another process answers on the control socket ${path.resolve(socketPath)}: stop it, or give this daemon its own OAUTH_CONTROL_SOCKET`);
  }
  await fsp.unlink(socketPath).catch(() => undefined);
  const server = createServer(app);
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } catch (err) {
    throw new StoreOpenError(`cannot listen on the control socket ${path.resolve(socketPath)} (${(err as Error).message}): set OAUTH_CONTROL_SOCKET to a path of at most 107 bytes in a private directory`);
  } finally {
    process.umask(umask);
  }
  return {
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await fsp.unlink(socketPath).catch(() => undefined);
    },
  };
}

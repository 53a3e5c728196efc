import { mkdtempSync } from 'node:fs';
import type { Server } from 'node:http';
import { freePort } from './free-port.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { listenControl } from '../../src/control-socket.js';
import { createServices, type Services } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';

export interface RunningApp {
  services: Services;
  port: number;
  baseUrl: string;
  dataDir: string;
  /** The environment that describes this app, for CLI commands and config. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * The real app on an ephemeral loopback port with a temporary data directory. The port is
 * picked first so the issuer can name it, as a deployment's OAUTH_ISSUER_URL does.
 */
export async function startApp(extraEnv: Record<string, string> = {}): Promise<RunningApp> {
  const dataDir = extraEnv.OAUTH_DATA_DIR ?? mkdtempSync(path.join(tmpdir(), 'latchkey-app-'));
  const port = await freePort();
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    OAUTH_ISSUER_URL: `http://127.0.0.1:${port}`,
    OAUTH_DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    ...(extraEnv.OAUTH_PIN_HASH ? {} : { OAUTH_PIN: '246810' }),
    ...extraEnv,
  };
  const config = loadConfig(env);
  const logger = createLogger('silent');
  const services = await createServices(config, logger);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = services.app.listen(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  let control: Awaited<ReturnType<typeof listenControl>>;
  try {
    control = await listenControl(services.control, config.store.controlSocket);
  } catch (err) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.backend.close();
    throw err;
  }
  return {
    services,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    dataDir,
    env,
    stop: async () => {
      await services.gateway?.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await control.close();
      await services.backend.close();
    },
  };
}

export { freePort };

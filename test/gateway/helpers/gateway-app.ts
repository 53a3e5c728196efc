import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Clock } from '../../../src/clock.js';
import { loadConfig } from '../../../src/config.js';
import { createServices, type Services } from '../../../src/daemon.js';
import type { Gateway } from '../../../src/gateway/index.js';
import { createLogger } from '../../../src/logger.js';
import { freePort } from '../../helpers/running-app.js';

export const PIN = '24681357';

export interface GatewayApp {
  baseUrl: string;
  services: Services;
  gateway: Gateway;
  configFile: string;
  /** Every log line Latchkey wrote, as JSON text. */
  logs: string[];
  /** Rewrites the gateway file (then call gateway.reload(), as SIGHUP does). */
  writeConfig(file: object): void;
  stop(): Promise<void>;
}

/**
 * The real app (store, OAuth endpoints, consent page, gateway) on a loopback port, with the
 * given gateway file; `clock` drives token and session expiry when a test needs to travel.
 */
export async function startGatewayApp(file: object, options: { env?: Record<string, string>; clock?: Clock } = {}): Promise<GatewayApp> {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-gateway-'));
  const configFile = path.join(dir, 'gateway.json');
  const writeConfig = (f: object): void => writeFileSync(configFile, JSON.stringify(f, null, 2));
  writeConfig(file);
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    PORT: String(port),
    OAUTH_ISSUER_URL: baseUrl,
    OAUTH_DATA_DIR: path.join(dir, 'data'),
    OAUTH_PIN: PIN,
    OAUTH_GATEWAY_CONFIG: configFile,
    ...options.env,
  });
  const logs: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logs.push(line) });
  const services = await createServices(config, logger, options.clock ? { clock: options.clock } : {});
  const gateway = services.gateway;
  if (!gateway) throw new Error('no gateway was created');
  const server = await new Promise<Server>((resolve, reject) => {
    const s = services.app.listen(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  return {
    baseUrl,
    services,
    gateway,
    configFile,
    logs,
    writeConfig,
    stop: async () => {
      await gateway.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.backend.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.js';
import { startDaemon } from './daemon.js';
import { createLogger } from './logger.js';
import { DataDirLockedError } from './store/file/data-dir-lock.js';
import { GatewayConfigError } from './gateway/index.js';
import { StoreOpenError } from './store/types.js';

/** The daemon's entry point: config, logger, start, signals. */
async function main(): Promise<void> {
  dotenv.config({ quiet: true });
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`latchkey: configuration error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  // Listening comes before startDaemon resolves (the control socket, the timers): a SIGTERM in
  // that moment (systemd stopping a service it just started, a test restarting as soon as
  // /healthz answers) is remembered and served once the daemon can shut down cleanly, rather
  // than killing it by the signal's default action.
  let stop: ((signal: string) => void) | undefined;
  let pending: string | undefined;
  const onSignal = (signal: string): void => {
    if (stop) return stop(signal);
    pending ??= signal;
    // A start that does not finish (a database that never answers) must not hold the stop up.
    setTimeout(() => process.exit(1), 10_000).unref();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // SIGHUP's default action ends the process too: a `systemctl reload` while the daemon starts
  // is remembered and served once it runs (the file may have changed after it was read).
  let reload: (() => void) | undefined;
  let reloadPending = false;
  process.on('SIGHUP', () => {
    if (reload) reload();
    else reloadPending = true;
  });
  let daemon;
  try {
    daemon = await startDaemon(config, logger);
  } catch (err) {
    if (err instanceof GatewayConfigError) {
      process.stderr.write(`latchkey: configuration error: ${err.message}\n`);
      process.exit(1);
    }
    const message =
      err instanceof StoreOpenError || err instanceof DataDirLockedError
        ? err.message
        : (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
          ? `port ${config.listen.port} on ${config.listen.host} is already in use: stop the other process or set PORT`
          : (err as NodeJS.ErrnoException).code === 'EACCES'
            ? `permission denied (${(err as Error).message}): check PORT and that OAUTH_DATA_DIR (${config.store.dataDir}) belongs to this user`
            : `could not start: ${(err as Error).message}`;
    process.stderr.write(`latchkey: ${message}\n`);
    process.exit(1);
  }
  if (daemon.services.pinGenerated) {
    // Printed once for the person at the console, never into the JSON log.
    process.stderr.write(
      `\n  No OAUTH_PIN is set. The approval PIN for this run is: ${daemon.services.pin}\n  Set OAUTH_PIN_HASH (from: latchkey hash-pin) or OAUTH_PIN in .env to choose a permanent one.\n\n`,
    );
  }
  stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down: finishing requests in flight');
    const force = setTimeout(() => {
      logger.error('requests still running after 10 s; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    daemon
      .shutdown()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  // SIGHUP (systemctl reload) re-reads the gateway file; a bad file keeps the servers running.
  reload = (): void => {
    const reloadGateway = daemon.services.reloadGateway;
    if (!reloadGateway) {
      logger.info('SIGHUP: nothing to reload (OAUTH_GATEWAY_CONFIG is not set)');
      return;
    }
    reloadGateway().then(
      (report) => logger.info({ gateway: report }, 'gateway reloaded'),
      (err: unknown) =>
        err instanceof GatewayConfigError
          ? logger.error(`gateway not reloaded, the running servers stay as they were: ${err.message}`)
          : logger.error({ err }, 'gateway reload failed'),
    );
  };
  if (pending !== undefined) stop(pending);
  else if (reloadPending) reload();
}

void main();

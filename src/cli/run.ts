import { ConfigError, loadConfig } from '../config.js';
import { backup } from './backup.js';
import { doctor } from './doctor.js';
import { hashPinCommand } from './hash-pin.js';
import { loadEnv, localBaseUrl, parseArgs, UsageError, type CliIo } from './io.js';
import { migrateCommand } from './migrate.js';
import { stats } from './stats.js';

export const USAGE = `Usage: latchkey <command> [options]

Commands:
  latchkey doctor [--env-file FILE]            check config, data directory, daemon and issuer URL
  latchkey backup <dir> [--env-file FILE] [--data-dir DIR]
                                               copy a consistent snapshot of the data directory
                                               into <dir>/latchkey-backup-<time>/ (safe while running)
  latchkey migrate [--env-file FILE]           apply the PostgreSQL schema migrations the database
                                               at OAUTH_DATABASE_URL lacks (the daemon also does at start)
  latchkey hash-pin                            print an OAUTH_PIN_HASH value for a PIN (read from
                                               the terminal, or the first line of standard input)
  latchkey stats [--env-file FILE] [--url URL] [--json]
                                               counts from the running daemon's /oauth/stats

Settings come from the environment and .env in the current directory; with --env-file
(e.g. /etc/latchkey/latchkey.env) that file is read instead and wins over the shell.
`;

/** Runs one CLI command; resolves to the process exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'doctor': {
        const args = parseArgs(rest, { values: ['env-file'] });
        if (args.positional.length > 0) throw new UsageError('doctor takes no arguments');
        return await doctor(io, loadEnv(io, args.values['env-file']));
      }
      case 'backup': {
        const args = parseArgs(rest, { values: ['env-file', 'data-dir'] });
        const [target, extra] = args.positional;
        if (target === undefined || extra !== undefined) throw new UsageError('backup needs exactly one target directory');
        const env = loadEnv(io, args.values['env-file']);
        const dataDir = args.values['data-dir'] ?? (env.OAUTH_DATA_DIR?.trim() || '.oauth_data');
        return await backup(io, dataDir, target);
      }
      case 'migrate': {
        const args = parseArgs(rest, { values: ['env-file'] });
        if (args.positional.length > 0) throw new UsageError('migrate takes no arguments');
        return await migrateCommand(io, loadEnv(io, args.values['env-file']).OAUTH_DATABASE_URL?.trim());
      }
      case 'hash-pin': {
        const args = parseArgs(rest, {});
        if (args.positional.length > 0) throw new UsageError('hash-pin takes no arguments: it asks for the PIN');
        return await hashPinCommand(io);
      }
      case 'stats': {
        const args = parseArgs(rest, { values: ['env-file', 'url'], flags: ['json'] });
        let url = args.values.url?.replace(/\/+$/, '');
        if (url === undefined) {
          const config = loadConfig(loadEnv(io, args.values['env-file']));
          url = localBaseUrl(config.host, config.port);
        }
        return await stats(io, url, args.flags.has('json'));
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`latchkey: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.err(`latchkey: configuration error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

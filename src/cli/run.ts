import path from 'node:path';
import { ConfigError, DEFAULT_DATA_DIR, loadConfig, type Config } from '../config.js';
import { backup } from './backup.js';
import { doctor } from './doctor.js';
import { hashPinCommand } from './hash-pin.js';
import { loadEnv, localBaseUrl, parseArgs, UsageError, type CliIo } from './io.js';
import { ControlUnavailableError } from './control-client.js';
import { auditCommand } from './audit-command.js';
import { deleteClients, forgetDevices, listClients, listGrants, revoke, unlock } from './owner-commands.js';
import { migrateCommand } from './migrate.js';
import { stats } from './stats.js';
import { exportCommand, importCommand } from './transfer.js';

export const USAGE = `Usage: latchkey <command> [options]

Commands:
  latchkey doctor [--env-file FILE]            check config, data directory (or database), daemon,
                                               issuer URL and each gateway server (started once,
                                               tools listed)
  latchkey backup <dir> [--env-file FILE] [--data-dir DIR]
                                               copy a consistent snapshot of the data directory
                                               into <dir>/latchkey-backup-<time>/ (safe while running)
  latchkey migrate [--env-file FILE]           apply the PostgreSQL schema migrations the database
                                               at OAUTH_DATABASE_URL lacks (the daemon also does at start)
  latchkey export <dir> [--env-file FILE]      write the whole installation (the files, or the database
                                               at OAUTH_DATABASE_URL) into a new directory <dir>
  latchkey import <dir> [--env-file FILE] [--force]
                                               load an export into this configuration's backend
                                               (empty, or replaced with --force; no daemon running)
  latchkey hash-pin                            print an OAUTH_PIN_HASH value for a PIN (read from
                                               the terminal, or the first line of standard input)
  latchkey stats [--env-file FILE] [--url URL] [--json]
                                               counts, uptime and version of the running daemon
  latchkey clients [--json]                    registered clients and their live grants
  latchkey clients delete <client-id>...       delete clients and everything issued to them
  latchkey grants [--client ID] [--json]       live grants (one per approval), with their ids
  latchkey revoke <grant-id>... | --client ID | --subject SUBJECT
                                               revoke grants (or every grant of one client, or
                                               everything one person approved); their tokens
                                               stop working at once
  latchkey unlock                              lift every PIN lockout (wrong-PIN pauses)
  latchkey forget-devices                      forget every browser that entered the right PIN
                                               (a copied device cookie then stops working)
  latchkey audit [--since 24h|7d|2026-01-31] [--json]
                                               the audit log, oldest first: sign-ins, approvals,
                                               wrong PINs, revocations, clients, restarts

Settings come from the environment and .env in the current directory; with --env-file
(e.g. /etc/latchkey/latchkey.env) that file is read instead and wins over the shell.
clients, grants, revoke, unlock and audit talk to the running daemon through its control socket
(OAUTH_DATA_DIR/control.sock): run them as the user Latchkey runs as.
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
        if (env.OAUTH_DATABASE_URL?.trim() && args.values['data-dir'] === undefined) {
          // The state lives in PostgreSQL: the data directory holds only the pid lock.
          io.err('latchkey backup: OAUTH_DATABASE_URL is set, so the data lives in PostgreSQL: back it up with pg_dump, or copy it with latchkey export <dir> (docs/scaling.md#backups)\n');
          return 1;
        }
        const dataDir = args.values['data-dir'] ?? (env.OAUTH_DATA_DIR?.trim() || DEFAULT_DATA_DIR);
        return await backup(io, dataDir, target);
      }
      case 'migrate': {
        const args = parseArgs(rest, { values: ['env-file'] });
        if (args.positional.length > 0) throw new UsageError('migrate takes no arguments');
        return await migrateCommand(io, loadEnv(io, args.values['env-file']).OAUTH_DATABASE_URL?.trim());
      }
      case 'export': {
        const args = parseArgs(rest, { values: ['env-file'] });
        const [target, extra] = args.positional;
        if (target === undefined || extra !== undefined) throw new UsageError('export needs exactly one target directory');
        return await exportCommand(io, loadConfig(loadEnv(io, args.values['env-file'])), target);
      }
      case 'import': {
        const args = parseArgs(rest, { values: ['env-file'], flags: ['force'] });
        const [source, extra] = args.positional;
        if (source === undefined || extra !== undefined) throw new UsageError('import needs exactly one directory, made by latchkey export');
        return await importCommand(io, loadConfig(loadEnv(io, args.values['env-file'])), source, args.flags.has('force'));
      }
      case 'hash-pin': {
        const args = parseArgs(rest, {});
        if (args.positional.length > 0) throw new UsageError('hash-pin takes no arguments: it asks for the PIN');
        return await hashPinCommand(io);
      }
      case 'stats': {
        const args = parseArgs(rest, { values: ['env-file', 'url'], flags: ['json'] });
        const config = loadConfig(loadEnv(io, args.values['env-file']));
        const given = args.values.url?.replace(/\/+$/, '');
        const source = {
          socket: given === undefined ? controlSocket(io, config) : undefined,
          url: given ?? localBaseUrl(config.listen.host, config.listen.port),
          secret: config.introspectionSecret,
        };
        return await stats(io, source, args.flags.has('json'));
      }
      case 'clients': {
        const args = parseArgs(rest, { values: ['env-file'], flags: ['json'] });
        const socket = controlSocket(io, loadConfig(loadEnv(io, args.values['env-file'])));
        const [sub, ...ids] = args.positional;
        if (sub === undefined) return await listClients(io, socket, args.flags.has('json'));
        if (sub === 'delete' && ids.length > 0) return await deleteClients(io, socket, ids);
        throw new UsageError('use: latchkey clients [--json], or latchkey clients delete <client-id>...');
      }
      case 'grants': {
        const args = parseArgs(rest, { values: ['env-file', 'client'], flags: ['json'] });
        if (args.positional.length > 0) throw new UsageError('grants takes no arguments; use --client ID to pick one client');
        return await listGrants(io, controlSocket(io, loadConfig(loadEnv(io, args.values['env-file']))), args.values.client, args.flags.has('json'));
      }
      case 'revoke': {
        const args = parseArgs(rest, { values: ['env-file', 'client', 'subject'] });
        const { client: clientId, subject } = args.values;
        if ([clientId, subject, args.positional.length > 0 ? args.positional : undefined].filter((v) => v !== undefined).length !== 1) {
          throw new UsageError('revoke takes grant ids (see latchkey grants), or --client ID for every grant of one client, or --subject SUBJECT for everything one person approved');
        }
        const target = clientId !== undefined ? { clientId } : subject !== undefined ? { subject } : { grantIds: args.positional };
        return await revoke(io, controlSocket(io, loadConfig(loadEnv(io, args.values['env-file']))), target);
      }
      case 'audit': {
        const args = parseArgs(rest, { values: ['env-file', 'since'], flags: ['json'] });
        if (args.positional.length > 0) throw new UsageError('audit takes no arguments; use --since 24h (or 7d, or an ISO date)');
        return await auditCommand(io, controlSocket(io, loadConfig(loadEnv(io, args.values['env-file']))), args.values.since, args.flags.has('json'));
      }
      case 'forget-devices': {
        const args = parseArgs(rest, { values: ['env-file'] });
        if (args.positional.length > 0) throw new UsageError('forget-devices takes no arguments');
        return await forgetDevices(io, controlSocket(io, loadConfig(loadEnv(io, args.values['env-file']))));
      }
      case 'unlock': {
        const args = parseArgs(rest, { values: ['env-file'] });
        if (args.positional.length > 0) throw new UsageError('unlock takes no arguments');
        return await unlock(io, controlSocket(io, loadConfig(loadEnv(io, args.values['env-file']))));
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
    if (err instanceof ControlUnavailableError) {
      io.err(`latchkey ${command ?? ''}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** The control socket of the daemon this environment describes, relative to the working directory. */
function controlSocket(io: CliIo, config: Config): string {
  return path.resolve(io.cwd, config.store.controlSocket);
}

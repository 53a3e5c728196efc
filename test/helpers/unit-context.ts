import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { FakeClock } from './fake-clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { OAuthContext } from '../../src/oauth/context.js';
import { cryptoRandom } from '../../src/crypto/secrets.js';
import { FileBackend } from '../../src/store/file/file-backend.js';
import type { AuditStore, ClientRecord, Store } from '../../src/store/types.js';

export { FakeClock };

export const silentLogger = (): Logger => pino({ level: 'silent' });

export async function tempDir(prefix = 'latchkey-unit-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
}

export function testConfig(dataDir: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    OAUTH_DATA_DIR: dataDir,
    OAUTH_ISSUER_URL: 'https://auth.example.com',
    OAUTH_VALID_SCOPES: 'read write admin',
    OAUTH_DEFAULT_SCOPES: 'read',
    OAUTH_RESOURCES: 'https://mcp.example.com/mcp,https://other.example.com',
    OAUTH_ACCESS_TOKEN_TTL: '3600',
    OAUTH_REFRESH_TOKEN_TTL: '2592000',
    OAUTH_AUTH_CODE_TTL: '600',
    OAUTH_REFRESH_REUSE_GRACE: '30',
    ...env,
  });
}

export interface TestContext {
  ctx: OAuthContext;
  store: Store;
  /** The backend's audit log, to check what the rules recorded. */
  audit: AuditStore;
  clock: FakeClock;
  dir: string;
  close(): Promise<void>;
}

/** The context the protocol rules get, built from a test config as the daemon builds it. */
export function oauthContext(config: Config, store: Store, audit: AuditStore, clock: FakeClock, logger: Logger): OAuthContext {
  return {
    issuer: config.issuer,
    tokens: config.tokens,
    scopes: config.scopes,
    resources: () => config.resources,
    store,
    accessPolicy: config.identity.policy,
    audit: new AuditLog(audit, clock),
    clock,
    random: cryptoRandom,
    logger,
  };
}

export async function makeContext(env: Record<string, string> = {}): Promise<TestContext> {
  const dir = await tempDir();
  const clock = new FakeClock(Date.UTC(2026, 0, 1));
  const logger = silentLogger();
  const config = testConfig(dir, env);
  const { backend } = await FileBackend.open({ dataDir: dir, logger, random: cryptoRandom });
  const ctx = oauthContext(config, backend.store, backend.audit, clock, logger);
  return {
    ctx,
    store: backend.store,
    audit: backend.audit,
    clock,
    dir,
    close: async () => {
      await backend.close();
      await removeDir(dir);
    },
  };
}

let clientCounter = 0;

export function clientRecord(overrides: Partial<ClientRecord> = {}, metadata: Partial<ClientRecord['metadata']> = {}): ClientRecord {
  clientCounter++;
  return {
    clientId: `client-${clientCounter}`,
    issuedAt: Date.UTC(2026, 0, 1),
    metadata: {
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...metadata,
    },
    ...overrides,
  };
}

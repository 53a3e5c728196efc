import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from '@jest/globals';
import { parseIdentityConfig, type IdentityConfig } from '../../src/identity/identity-config.js';
import { LoginError, type LoginFailureReason, type LoginProvider } from '../../src/identity/login-provider.js';
import { createLoginProviders } from '../../src/identity/providers.js';
import { createLogger } from '../../src/logger.js';

/** Shared by the sign-in tests: config from an environment, providers with a captured log. */

export function identityConfig(env: Record<string, string>): IdentityConfig {
  // As loadConfig reads variables: trimmed, and blank means unset.
  return parseIdentityConfig((name) => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  });
}

export interface Providers {
  providers: LoginProvider[];
  /** Every JSON line logged, to read events and to grep for secrets. */
  logLines: string[];
}

export async function providersFor(env: Record<string, string>, timeoutMs?: number): Promise<Providers> {
  const logLines: string[] = [];
  const logger = createLogger('debug', { write: (line: string) => void logLines.push(line) });
  const providers = await createLoginProviders(identityConfig(env), { logger, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
  return { providers, logLines };
}

export function only(providers: LoginProvider[], id: LoginProvider['id']): LoginProvider {
  const found = providers.find((p) => p.id === id);
  if (found === undefined) throw new Error(`no ${id} provider`);
  return found;
}

/** Runs `action` and returns the LoginError it must throw. */
export async function loginFailure(action: () => Promise<unknown>): Promise<LoginError> {
  try {
    await action();
  } catch (err) {
    if (err instanceof LoginError) return err;
    throw err;
  }
  throw new Error('expected a LoginError');
}

export async function expectRefused(action: () => Promise<unknown>, reason: LoginFailureReason): Promise<LoginError> {
  const err = await loginFailure(action);
  expect({ reason: err.reason, detail: err.detail }).toMatchObject({ reason });
  expect(err.message.length).toBeGreaterThan(20);
  return err;
}

/** A TCP server that accepts connections and never answers: a provider that hangs. */
export async function startBlackhole(): Promise<{ url: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

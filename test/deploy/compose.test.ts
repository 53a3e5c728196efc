import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';

/**
 * docs/compose.yaml (PostgreSQL, two Latchkeys, two cloudflared) cannot run here: no Docker
 * engine. It is checked as text against what it depends on: the Dockerfile (build, data
 * directory, stop timeout), the configuration (every variable it sets is valid), and its own
 * wiring (each cloudflared reaches exactly its own instance, which trusts exactly that network).
 */

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  env_file?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
  networks?: string[] | Record<string, { aliases?: string[] } | null>;
  depends_on?: string[] | Record<string, { condition: string }>;
  stop_grace_period?: string;
  command?: string[];
  healthcheck?: { test: string[] };
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean; ipam?: { config: { subnet: string }[] } }>;
  volumes: Record<string, unknown>;
}

const DOCS = path.resolve('docs');
const compose = parse(readFileSync(path.join(DOCS, 'compose.yaml'), 'utf8'), { merge: true }) as Compose;
const dockerfile = readFileSync('Dockerfile', 'utf8');
const services = compose.services;
const latchkeys = Object.entries(services).filter(([, s]) => s.build !== undefined);
const tunnels = Object.entries(services).filter(([, s]) => s.image?.startsWith('cloudflare/cloudflared'));
const networksOf = (s: Service): string[] => (Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {}));
const seconds = (d: string | undefined): number => Number(/^(\d+)s$/.exec(d ?? '')?.[1] ?? NaN);

describe('docs/compose.yaml', () => {
  it('runs PostgreSQL, two Latchkeys and two cloudflared replicas', () => {
    expect(services.postgres?.image).toMatch(/^postgres:\d+/);
    expect(services.postgres?.healthcheck?.test).toContain('pg_isready');
    expect(latchkeys.map(([name]) => name)).toEqual(['latchkey-a', 'latchkey-b']);
    expect(tunnels.map(([name]) => name)).toEqual(['cloudflared-a', 'cloudflared-b']);
    for (const [, t] of tunnels) expect(t.command).toEqual(['tunnel', '--no-autoupdate', 'run']);
  });

  it('builds both instances from the Dockerfile, with its data directory and more than its 10 s drain to stop', () => {
    const dataDir = /OAUTH_DATA_DIR=(\S+)/.exec(dockerfile)?.[1];
    expect(dataDir).toBe('/data');
    for (const [name, s] of latchkeys) {
      expect(existsSync(path.join(DOCS, s.build?.context ?? '', s.build?.dockerfile ?? ''))).toBe(true);
      const volumes = (s.volumes ?? []).map((v) => v.split(':'));
      expect(volumes).toEqual([[`${name}-data`, dataDir]]);
      expect(Object.keys(compose.volumes)).toContain(`${name}-data`);
      expect(seconds(s.stop_grace_period)).toBeGreaterThan(10);
      expect(s.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
      expect(s.env_file).toBe('latchkey.env');
    }
    expect(dockerfile).toMatch(/gives up after 10 s/);
  });

  it('sets only valid configuration, never a secret: those come from latchkey.env', () => {
    const documented = readFileSync('.env.example', 'utf8');
    for (const [, s] of latchkeys) {
      const env = s.environment ?? {};
      for (const name of Object.keys(env)) expect(documented).toContain(name);
      expect(() => loadConfig({ ...env, OAUTH_DATABASE_URL: 'postgres://latchkey:x@postgres:5432/latchkey?sslmode=disable' })).not.toThrow();
      expect(Object.keys(env).filter((k) => /PIN|SECRET|TOKEN|DATABASE_URL/.test(k))).toEqual([]);
    }
  });

  it('gives each cloudflared exactly its own instance, as "latchkey", and each instance trusts exactly that network', () => {
    const subnet = (network: string): string | undefined => compose.networks[network]?.ipam?.config[0]?.subnet;
    for (const [i, [, tunnel]] of tunnels.entries()) {
      const [name, latchkey] = latchkeys[i] ?? [];
      const edge = networksOf(tunnel);
      expect(edge).toHaveLength(1);
      const network = edge[0] ?? '';
      const aliases = (latchkey?.networks as Record<string, { aliases?: string[] } | null>)[network]?.aliases;
      expect(aliases).toEqual(['latchkey']);
      expect(latchkey?.environment?.TRUST_PROXY).toBe(subnet(network));
      // No other instance is on that network: the alias is unambiguous.
      for (const [other, s] of latchkeys) if (other !== name) expect(networksOf(s)).not.toContain(network);
    }
  });

  it('keeps PostgreSQL on an internal network shared only with the instances', () => {
    expect(compose.networks.database?.internal).toBe(true);
    expect(networksOf(services.postgres ?? {})).toEqual(['database']);
    for (const [, s] of latchkeys) expect(networksOf(s)).toContain('database');
    for (const [, t] of tunnels) expect(networksOf(t)).not.toContain('database');
  });
});

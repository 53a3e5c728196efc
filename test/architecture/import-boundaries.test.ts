/**
 * The layers of docs/architecture.md, checked: each area of src/ may import only the areas
 * listed for it, and nothing imports in a cycle between areas. A change that makes http/
 * reach the store or oauth/ reach Express fails here, with the file and the import named.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

/** The areas of src/ from the bottom up, and what each may import of ours. */
const ALLOWED: Record<string, readonly string[]> = {
  clock: [],
  crypto: [],
  logger: [],
  'config-error': [],
  net: ['clock'],
  identity: ['clock', 'crypto', 'config-error', 'net'],
  config: ['crypto', 'config-error', 'identity', 'net'],
  store: ['clock', 'crypto'],
  audit: ['clock', 'store'],
  oauth: ['clock', 'crypto', 'config', 'net', 'store', 'identity', 'audit'],
  owner: ['clock', 'crypto', 'store', 'oauth', 'identity', 'audit'],
  gateway: ['clock', 'crypto', 'net', 'store', 'oauth', 'resource-server'],
  http: ['clock', 'crypto', 'config', 'net', 'oauth', 'owner', 'identity', 'gateway'],
  'resource-server': ['oauth'],
  metrics: ['oauth', 'store'],
  cli: ['clock', 'crypto', 'config', 'store', 'oauth', 'logger', 'identity', 'gateway'],
};
/** Packages an area must not import: the protocol rules know nothing of HTTP frameworks. */
const FORBIDDEN_PACKAGES: Record<string, readonly string[]> = {
  oauth: ['express', 'helmet', 'express-rate-limit', 'ejs'],
  owner: ['express', 'helmet', 'express-rate-limit', 'ejs'],
  store: ['express', 'helmet', 'express-rate-limit', 'ejs'],
  crypto: ['express'],
  identity: ['express', 'helmet', 'express-rate-limit', 'ejs'],
  audit: ['express', 'helmet', 'express-rate-limit', 'ejs'],
};
/** Files at the top that put the parts together may import anything (files, not areas: src/cli/ is checked). */
const COMPOSITION = new Set(['daemon.ts', 'index.ts', 'cli.ts', 'control-socket.ts']);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The area of a file: its top folder under src/, or its name for a file at the root. */
function areaOf(file: string): string {
  const [first = '', second] = path.relative(SRC, file).split(path.sep);
  return second === undefined ? first.replace(/\.ts$/, '') : first;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const pattern = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+(['"])([^'"]+)\1|import\(\s*(['"])([^'"]+)\3\s*\)/g;
  for (const match of text.matchAll(pattern)) found.push(match[2] ?? match[4] ?? '');
  return found;
}

interface Edge {
  file: string;
  from: string;
  to: string;
  specifier: string;
}

const files = sourceFiles(SRC);
const edges: Edge[] = [];
const packages: { file: string; area: string; name: string }[] = [];
for (const file of files) {
  const from = areaOf(file);
  for (const specifier of importsOf(file)) {
    if (specifier.startsWith('.')) {
      const target = path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts'));
      const to = areaOf(target);
      if (to !== from) edges.push({ file: path.relative(SRC, file), from, to, specifier });
    } else {
      packages.push({ file: path.relative(SRC, file), area: from, name: specifier.split('/')[0] ?? specifier });
    }
  }
}

/** The imports that break the layering, as lines naming file and import. */
function violations(list: readonly Edge[]): string[] {
  return list
    .filter((e) => !COMPOSITION.has(e.file))
    .filter((e) => !(ALLOWED[e.from] ?? []).includes(e.to))
    .map((e) => `${e.file} (${e.from}) imports ${e.specifier} (${e.to})`);
}

describe('import boundaries (docs/architecture.md)', () => {
  it('reads the source tree', () => {
    expect(files.length).toBeGreaterThan(40);
    expect(edges.length).toBeGreaterThan(40);
  });

  it('every area imports only the areas below it', () => {
    expect(violations(edges)).toEqual([]);
  });

  it('http/ never imports the store, and the rules never import an HTTP framework', () => {
    expect(edges.filter((e) => e.from === 'http' && e.to === 'store')).toEqual([]);
    const wrong = packages.filter((p) => (FORBIDDEN_PACKAGES[p.area] ?? []).includes(p.name)).map((p) => `${p.file} imports ${p.name}`);
    expect(wrong).toEqual([]);
  });

  it('no two areas import each other, directly or around a loop', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges) graph.set(e.from, (graph.get(e.from) ?? new Set()).add(e.to));
    const cycles: string[] = [];
    const visit = (area: string, trail: string[]): void => {
      if (trail.includes(area)) {
        cycles.push([...trail.slice(trail.indexOf(area)), area].join(' -> '));
        return;
      }
      for (const next of graph.get(area) ?? []) visit(next, [...trail, area]);
    };
    for (const area of graph.keys()) visit(area, []);
    expect(cycles).toEqual([]);
  });

  it('the check itself catches a forbidden import', () => {
    const probes: Edge[] = [
      { file: 'http/x.ts', from: 'http', to: 'store', specifier: '../store/types.js' },
      { file: 'store/y.ts', from: 'store', to: 'oauth', specifier: '../oauth/errors.js' },
      { file: 'cli/z.ts', from: 'cli', to: 'http', specifier: '../http/app.js' },
      { file: 'daemon.ts', from: 'daemon', to: 'http', specifier: './http/app.js' },
    ];
    expect(violations(probes)).toEqual([
      'http/x.ts (http) imports ../store/types.js (store)',
      'store/y.ts (store) imports ../oauth/errors.js (oauth)',
      'cli/z.ts (cli) imports ../http/app.js (http)',
    ]);
  });
});

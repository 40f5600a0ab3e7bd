import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root.js';
import type { SqlEngine } from './sql-engine.js';
import { QUERY_NAMES, type QueryName } from './query-names.js';

/** Folders (under the package root) whose `.sql` files hold the named queries: the store's, the SLA engine's and the status page's. */
export const QUERY_DIRS = ['src/store', 'src/sla', 'src/web'] as const;

const DIALECT_FILE = /\.(sqlite|postgres)\.sql$/;

/**
 * Reads the `.sql` files of `dirs` and splits them into named statements
 * (`-- name: x`). `x.sql` holds SQL both engines run; `x.sqlite.sql` and
 * `x.postgres.sql` hold one engine's dialect and override a shared name (or
 * add one) for that engine only. A name defined twice at the same level is
 * refused, so two files can never silently shadow each other.
 */
export function loadNamedQueries(
  kind: SqlEngine['kind'],
  dirs: readonly string[] = QUERY_DIRS.map((d) => join(packageRoot(), d)),
): Map<string, string> {
  const shared = new Map<string, string>();
  const dialect = new Map<string, string>();
  for (const dir of dirs) {
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .sort()) {
      const engine = DIALECT_FILE.exec(file)?.[1];
      if (engine !== undefined && engine !== kind) continue;
      const into = engine === undefined ? shared : dialect;
      for (const [name, sql] of splitNamed(readFileSync(join(dir, file), 'utf8'))) {
        if (into.has(name)) throw new Error(`named query ${name} defined twice (${file})`);
        into.set(name, sql);
      }
    }
  }
  for (const [name, sql] of dialect) shared.set(name, sql);
  return shared;
}

/**
 * The store's queries for an engine: loadNamedQueries, checked against
 * QUERY_NAMES. The code can only call a listed name (the type says so), so a
 * listed name no file defines, or a defined one not listed, means the files
 * and the code are out of step: the engine refuses to open rather than fail
 * on the first message that needs the query.
 */
export function storeQueries(kind: SqlEngine['kind'], dirs?: readonly string[]): ReadonlyMap<QueryName, string> {
  const queries = loadNamedQueries(kind, dirs);
  const listed = new Set<string>(QUERY_NAMES);
  const missing = QUERY_NAMES.filter((name) => !queries.has(name));
  const unlisted = [...queries.keys()].filter((name) => !listed.has(name));
  const problems = [
    ...(missing.length > 0 ? [`not defined in any .sql file: ${missing.join(', ')}`] : []),
    ...(unlisted.length > 0 ? [`defined but not in QUERY_NAMES (src/store/query-names.ts): ${unlisted.join(', ')}`] : []),
  ];
  if (problems.length > 0) throw new Error(`named queries for ${kind} do not match the code: ${problems.join('; ')}`);
  return queries as ReadonlyMap<QueryName, string>;
}

function splitNamed(text: string): [string, string][] {
  const out: [string, string][] = [];
  let name: string | null = null;
  let body: string[] = [];
  const flush = () => {
    if (name !== null) out.push([name, body.join('\n').trim()]);
  };
  for (const line of text.split('\n')) {
    const m = /^--\s*name:\s*([\w-]+)\s*$/.exec(line);
    if (m) {
      flush();
      name = m[1]!;
      body = [];
    } else if (name !== null && !/^\s*--/.test(line)) {
      body.push(line);
    }
  }
  flush();
  return out;
}

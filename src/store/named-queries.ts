import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root.js';

/**
 * Reads every `*.sql` file of the store folder and splits it into named
 * statements (`-- name: x`). A name used twice is refused so two files can
 * never silently shadow each other.
 */
export function loadNamedQueries(dir = join(packageRoot(), 'src', 'store')): Map<string, string> {
  const queries = new Map<string, string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    let name: string | null = null;
    let body: string[] = [];
    const flush = () => {
      if (name === null) return;
      if (queries.has(name)) throw new Error(`named query ${name} defined twice (${file})`);
      queries.set(name, body.join('\n').trim());
    };
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
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
  }
  return queries;
}

// Named queries are called by name from TypeScript and defined in `.sql`
// files: every name the code uses must be defined (for every engine), and
// every definition used, so a mistyped name fails here rather than on the
// first message that needs it. The SQL itself is checked against the schema
// when an engine opens (checkQueries; see sqlite-engine.test.ts).

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { loadNamedQueries, QUERY_DIRS } from '../../src/store/named-queries.js';

/** Engines whose dialect files ship; each must define every name the code uses. */
const KINDS = ['sqlite', 'postgres'] as const;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * Names in calls like `tx.get<Row>('name', ...)` or `count(tx, 'name', ...)`
 * in the files written over the engine, and `${x}-name` templates as patterns.
 */
function usedNames(): { names: Set<string>; patterns: RegExp[] } {
  const names = new Set<string>();
  const patterns: RegExp[] = [];
  for (const file of sources(join(packageRoot(), 'src'))) {
    const text = readFileSync(file, 'utf8');
    if (!/\bSql(Session|Transaction|Engine)\b/.test(text)) continue;
    for (const m of text.matchAll(/\.(?:get|all|run|statement)(?:<[^()]*?>)?\(\s*'([\w-]+)'/g)) names.add(m[1]!);
    for (const m of text.matchAll(/\bcount\(\w+, '([\w-]+)'/g)) names.add(m[1]!);
    for (const m of text.matchAll(/\.(?:get|all|run)(?:<[^()]*?>)?\(\s*`([^`]+)`/g)) {
      patterns.push(new RegExp(`^${m[1]!.replace(/\$\{[^}]+\}/g, '[\\w-]+')}$`));
    }
  }
  return { names, patterns };
}

describe('named queries', () => {
  const used = usedNames();

  it('finds the calls it checks', () => {
    expect(used.names.size).toBeGreaterThan(60);
    expect(used.names).toContain('insert-ticket');
    expect(used.patterns.some((p) => p.test('sla-fr-sample-count'))).toBe(true);
  });

  for (const kind of KINDS) {
    it(`defines every name the code uses, for ${kind}`, () => {
      const defined = loadNamedQueries(kind);
      expect([...used.names].filter((n) => !defined.has(n))).toEqual([]);
    });

    it(`uses every name it defines, for ${kind}`, () => {
      const defined = loadNamedQueries(kind);
      const unused = [...defined.keys()].filter((n) => !used.names.has(n) && !used.patterns.some((p) => p.test(n)));
      expect(unused).toEqual([]);
    });
  }

  it('reads every folder that holds .sql files of the source', () => {
    const withSql = new Set(
      sources(join(packageRoot(), 'src'))
        .map((f) =>
          f
            .slice(packageRoot().length + 1)
            .split('/')
            .slice(0, -1)
            .join('/'),
        )
        .filter((d) => readdirSync(join(packageRoot(), d)).some((f) => f.endsWith('.sql'))),
    );
    expect([...withSql].sort()).toEqual([...QUERY_DIRS].sort());
  });
});

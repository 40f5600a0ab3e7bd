// Named queries are called by name from TypeScript and defined in `.sql`
// files: the names are a type (QueryName), so a mistyped one does not
// compile; the list of names must equal what the files define for every
// engine, and every definition is used, so a mistyped name fails here or at
// start rather than on the first message that needs it. The SQL itself is
// checked against the schema when an engine opens (checkQueries; see
// sqlite-engine.test.ts).

import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { loadNamedQueries, QUERY_DIRS, storeQueries } from '../../src/store/named-queries.js';
import type { PostgresEngine } from '../../src/store/postgres-engine.js';
import { QUERY_NAMES } from '../../src/store/query-names.js';
import type { SqlSession } from '../../src/store/sql-engine.js';
import type { SqliteEngine } from '../../src/store/sqlite-engine.js';

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

  it('lists each name once', () => {
    expect(new Set(QUERY_NAMES).size).toBe(QUERY_NAMES.length);
  });

  for (const kind of KINDS) {
    it(`lists exactly the names the .sql files define, for ${kind}`, () => {
      expect([...loadNamedQueries(kind).keys()].sort()).toEqual([...QUERY_NAMES].sort());
      expect(storeQueries(kind).size).toBe(QUERY_NAMES.length);
    });
  }

  it('refuses to open on files that define a listed name nowhere, or a name the list lacks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ticketd-queries-'));
    try {
      for (const from of QUERY_DIRS) {
        for (const file of readdirSync(join(packageRoot(), from)).filter((f) => f.endsWith('.sql'))) {
          copyFileSync(join(packageRoot(), from, file), join(dir, file));
        }
      }
      const ratings = join(dir, 'ratings.sql');
      const original = readFileSync(ratings, 'utf8');
      expect(original).toMatch(/^-- name: upsert-rating$/m);
      writeFileSync(ratings, original.replace(/^-- name: upsert-rating$/m, '-- name: upsert-ratng'));
      for (const kind of KINDS) {
        expect(() => storeQueries(kind, [dir])).toThrow(
          /not defined in any \.sql file: upsert-rating; defined but not in QUERY_NAMES \(src\/store\/query-names\.ts\): upsert-ratng/,
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('makes a mistyped name a type error, for both engines and every session', () => {
    // Never called: what is checked is that these compile, or do not.
    const calls = [
      (db: SqlSession) => db.get('insert-ticket'),
      // @ts-expect-error no query is named insert-tiket
      (db: SqlSession) => db.get('insert-tiket'),
      // @ts-expect-error no query is named insert-tiket
      (engine: SqliteEngine) => engine.run('insert-tiket'),
      // @ts-expect-error no query is named insert-tiket
      (engine: PostgresEngine) => engine.all('insert-tiket'),
      // @ts-expect-error no query is named insert-tiket
      (engine: SqliteEngine) => engine.transaction((tx) => tx.run('insert-tiket')),
      // @ts-expect-error no query is named insert-tiket
      (engine: PostgresEngine) => engine.snapshot((s) => s.get('insert-tiket')),
    ];
    expect(calls).toHaveLength(6);
  });

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

// The guides show sample output of `doctor`, `backup` and `migrate`, and the
// CHANGELOG says which schema an upgrade brings. Each names a schema version,
// and each went stale when a migration was added. The version they state must
// be the highest migration in migrations/, and the CHANGELOG's migrations must
// be the ones the files say they are.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { latestMigrationVersion, loadMigrations } from '../../src/store/migrate.js';

const root = packageRoot();
const latest = latestMigrationVersion();
const migrationNames = new Map(loadMigrations().map((m) => [m.version, m.name]));
const read = (page: string) => readFileSync(join(root, page), 'utf8');

/** The CHANGELOG's Unreleased section: what the next release brings. */
function unreleased(): string {
  const text = read('CHANGELOG.md');
  const start = text.indexOf('## [Unreleased]');
  expect(start, 'CHANGELOG.md has an Unreleased section').toBeGreaterThan(-1);
  const end = text.indexOf('\n## [', start + 1);
  return text.slice(start, end === -1 ? undefined : end);
}

/** Every current schema version a text states: sample output of doctor, backup and migrate, and the version an upgrade goes to. */
function statedVersions(text: string): number[] {
  const patterns = [/schema version (\d+)/gi, /database is at version (\d+)/gi, /from version \d+ to (\d+)/gi];
  return patterns.flatMap((p) => [...text.matchAll(p)].map((m) => Number(m[1])));
}

/** Whether a description shares a word with a migration's file name (`012_ratings.sql` and "ratings"), by the word's first letters. */
function describes(description: string, version: number): boolean {
  const name = migrationNames.get(version);
  if (name === undefined) return false;
  const words = name
    .replace(/^\d+_|\.sql$/g, '')
    .split('_')
    .filter((w) => w.length >= 3 && w !== 'and');
  const lower = description.toLowerCase();
  return words.some((w) => lower.includes(w.slice(0, 5)));
}

describe('schema version in the docs', () => {
  it('the migrations lead somewhere', () => {
    expect(latest).toBeGreaterThan(1);
  });

  const pages = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];
  it('the README and every guide state the latest schema version, where they state one', () => {
    const stale = pages.flatMap((page) =>
      statedVersions(read(page))
        .filter((v) => v !== latest)
        .map((v) => `${page}: ${v}`),
    );
    expect(stale, `the latest schema version is ${latest}`).toEqual([]);
  });

  it("the CHANGELOG's Unreleased section says the schema goes to the latest version", () => {
    const section = unreleased();
    const upgrade = /schema goes from version (\d+) to (\d+)/.exec(section);
    expect(upgrade, 'Unreleased says which schema versions the upgrade goes between').not.toBeNull();
    expect(Number(upgrade![2])).toBe(latest);
    expect(statedVersions(section).filter((v) => v !== latest)).toEqual([]);
  });

  it('the Unreleased list of migrations names each new migration once, for what it is', () => {
    const section = unreleased();
    const upgrade = /schema goes from version (\d+) to \d+ \(([^)]*)\)/.exec(section);
    expect(upgrade, 'the schema sentence lists its migrations in parentheses').not.toBeNull();
    const from = Number(upgrade![1]);
    const listed = upgrade![2]!.split(/,\s*/).map((item) => {
      const m = /^(\d{3}) (.+)$/.exec(item.trim());
      expect(m, `"${item}" is a migration number and what it does`).not.toBeNull();
      return { version: Number(m![1]), description: m![2]! };
    });
    expect(listed.map((l) => l.version)).toEqual(Array.from({ length: latest - from }, (_, i) => from + 1 + i));
    expect(listed.filter((l) => !describes(l.description, l.version)).map((l) => `${l.version} ${l.description}`)).toEqual([]);
  });

  it('each Unreleased entry that names a migration names the one it describes', () => {
    const wrong = unreleased()
      .split(/\n(?=- )/)
      .flatMap((entry) =>
        [...entry.matchAll(/migration (\d{3})/g)]
          .filter((m) => !describes(entry, Number(m[1])))
          .map((m) => `migration ${m[1]} (${migrationNames.get(Number(m[1])) ?? 'no such file'}): ${entry.slice(0, 60)}`),
      );
    expect(wrong).toEqual([]);
  });
});

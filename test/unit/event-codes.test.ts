// One registry of codes (src/core/event-codes.ts): every code the source
// writes is in it, at the levels it is logged at, and docs/logs.md shows
// exactly the registry. The source is read as text: a code that exists only
// in a log call is still found.

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { ERROR_CODES, LOG_EVENTS } from '../../src/core/event-codes.js';

const root = packageRoot();
const REGISTRY = join(root, 'src/core/event-codes.ts');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const sources = sourceFiles(join(root, 'src'))
  .filter((f) => f !== REGISTRY)
  .map((file) => ({ file: relative(root, file), text: readFileSync(file, 'utf8') }));

/** `export const NAME = 'CODE'` anywhere in src, so `{ code: NAME }` can be resolved. */
const constants = new Map<string, string>();
for (const { text } of sources) {
  for (const m of text.matchAll(/(?:export )?const ([A-Z][A-Z0-9_]*) = '([A-Z][A-Z0-9_]*)'/g)) constants.set(m[1]!, m[2]!);
}

function codesIn(expression: string): string[] {
  const literals = [...expression.matchAll(/'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!);
  if (literals.length > 0) return literals;
  const constant = constants.get(expression.trim());
  return constant ? [constant] : [];
}

/** Every code logged, with the levels of the calls that log it: `.warn({ code: ... })` and `log[c ? 'info' : 'warn']({ code: ... })`. */
function loggedLevels(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  const add = (levels: string[], expression: string) => {
    for (const code of codesIn(expression)) {
      const set = found.get(code) ?? new Set<string>();
      for (const level of levels) set.add(level);
      found.set(code, set);
    }
  };
  for (const { text } of sources) {
    for (const m of text.matchAll(/\.(trace|debug|info|warn|error|fatal)\(\s*\{\s*code:\s*([^,}\n]+)/g)) add([m[1]!], m[2]!);
    for (const m of text.matchAll(/\[([^\]]*)\]\(\s*\{\s*code:\s*([^,}\n]+)/g)) {
      add(
        [...m[1]!.matchAll(/'(trace|debug|info|warn|error|fatal)'/g)].map((l) => l[1]!),
        m[2]!,
      );
    }
  }
  return found;
}

const registered = new Set([...LOG_EVENTS.map((e) => e.code), ...ERROR_CODES.map((e) => e.code)]);

describe('event and error codes', () => {
  it('lists every code the source uses, once', () => {
    const used = new Map<string, string>();
    for (const { file, text } of sources) {
      // Upper-case words with an underscore in quotes, and any upper-case `code: 'WORD'`.
      for (const m of text.matchAll(/['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"`]|code: '([A-Z][A-Z0-9]*)'/g))
        used.set(m[1] ?? m[2]!, file);
    }
    const missing = [...used].filter(([code]) => !registered.has(code)).map(([code, file]) => `${code} (${file})`);
    expect(missing, 'codes used in src/ but not listed in src/core/event-codes.ts').toEqual([]);
    const all = [...LOG_EVENTS, ...ERROR_CODES].map((e) => e.code);
    expect(all.length, 'a code listed twice').toBe(registered.size);
    const unused = all.filter((code) => !used.has(code));
    expect(unused, 'codes listed but never used in src/').toEqual([]);
  });

  it('gives each log event the levels it is logged at', () => {
    const logged = loggedLevels();
    const drift = LOG_EVENTS.flatMap((e) => {
      const levels = [...(logged.get(e.code) ?? [])].sort();
      return levels.join(',') === [...e.levels].sort().join(',')
        ? []
        : [`${e.code}: listed ${e.levels.join('/')}, logged ${levels.join('/') || 'nowhere'}`];
    });
    expect(drift).toEqual([]);
    const notListed = [...logged.keys()].filter((code) => !LOG_EVENTS.some((e) => e.code === code));
    expect(notListed, 'logged codes missing from LOG_EVENTS').toEqual([]);
  });

  it('docs/logs.md shows the registry as it is', () => {
    const doc = readFileSync(join(root, 'docs/logs.md'), 'utf8');
    const between = (name: string) => {
      const m = new RegExp(`<!-- ${name}:start -->\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(doc);
      return m?.[1] ?? `(no <!-- ${name}:start --> ... <!-- ${name}:end --> section)`;
    };
    const events = [
      '| code | level | when |',
      '|---|---|---|',
      ...LOG_EVENTS.map((e) => `| \`${e.code}\` | ${e.levels.join(' / ')} | ${e.meaning} |`),
    ];
    const errors = ['| code | meaning |', '|---|---|', ...ERROR_CODES.map((e) => `| \`${e.code}\` | ${e.meaning} |`)];
    expect(between('log-events')).toBe(`${events.join('\n')}\n`);
    expect(between('error-codes')).toBe(`${errors.join('\n')}\n`);
  });
});

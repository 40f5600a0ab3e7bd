// Every kind of mail ticketd sends is a template kind in the registry's
// schema. The template guide lists the kinds an operator can change and the
// variables each may use, and the command line's `tickets show --json` lists
// the kinds a message can have; both fell behind when the queue notices came.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEMPLATE_KINDS, variablesOf } from '../../src/compose/template-schema.js';
import { packageRoot } from '../../src/config/package-root.js';

const read = (page: string) => readFileSync(join(packageRoot(), page), 'utf8');

/** The backticked names in a line. */
const named = (line: string) => [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

describe('template kinds in the docs', () => {
  it('the schema has the kinds the docs are checked for', () => {
    expect(TEMPLATE_KINDS.length).toBeGreaterThanOrEqual(6);
  });

  const templates = read('docs/templates.md');

  it('docs/templates.md has a row for each kind naming every variable it may use', () => {
    const rows = new Map(
      templates
        .split('\n')
        .filter((l) => /^\| `[a-z-]+` \| /.test(l))
        .map((l) => [named(l)[0]!, l.split('|')[2]!] as const),
    );
    const wrong: string[] = [];
    for (const kind of TEMPLATE_KINDS) {
      const row = rows.get(kind);
      if (row === undefined) {
        wrong.push(`${kind}: no row`);
        continue;
      }
      const documented = named(row);
      for (const variable of Object.keys(variablesOf(kind)))
        if (!documented.includes(variable)) wrong.push(`${kind}: ${variable} not listed`);
    }
    expect(wrong).toEqual([]);
  });

  it('docs/templates.md names every kind among those an operator can change', () => {
    const sentence = /for\s+the\s+kinds\s+([^.]*?),\s+overridable/.exec(templates);
    expect(sentence, 'the "Changing the templates" sentence lists the kinds').not.toBeNull();
    expect(named(sentence![1]!).sort()).toEqual([...TEMPLATE_KINDS].sort());
  });

  it("docs/command-line.md names every kind among a message's kinds in `tickets show --json`", () => {
    const row = read('docs/command-line.md')
      .split('\n')
      .find((l) => l.startsWith('| `tickets show '));
    expect(row, 'command-line.md has the tickets show row').toBeDefined();
    const kinds = named(/`kind` is (.*)$/.exec(row!)?.[1] ?? '');
    expect(TEMPLATE_KINDS.filter((k) => !kinds.includes(k))).toEqual([]);
  });
});

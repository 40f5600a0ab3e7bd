// docs/configuration.md is the configuration reference: its table documents
// every key of the schema the daemon validates with (src/config/schema.ts),
// and nothing else. The key list is generated from the zod schema itself.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { packageRoot } from '../../src/config/package-root.js';
import { configSchema } from '../../src/config/schema.js';

/** Every key path of a schema: `mailboxes[].imap.host`; a record's keys are `NAME`; an array of values is its own key. */
function schemaKeys(schema: z.core.$ZodType, path: string, keys: Set<string>): void {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, any>;
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'readonly':
      schemaKeys(def.innerType, path, keys);
      return;
    case 'pipe':
      schemaKeys(def.in, path, keys);
      return;
    case 'object':
      if (path) keys.add(path);
      for (const [key, value] of Object.entries(def.shape as Record<string, z.core.$ZodType>))
        schemaKeys(value, path ? `${path}.${key}` : key, keys);
      return;
    case 'array': {
      const element = (def.element as z.core.$ZodType)._zod.def.type;
      if (element === 'object') {
        keys.add(path);
        schemaKeys(def.element, `${path}[]`, keys);
        return;
      }
      keys.add(path);
      return;
    }
    case 'record':
      keys.add(path);
      schemaKeys(def.valueType, `${path}.NAME`, keys);
      return;
    default:
      keys.add(path);
  }
}

/** The keys in the first column of the reference table; `mon`, `tue` after `x.hours.mon` stand for `x.hours.tue`. */
function documentedKeys(doc: string): string[] {
  const lines = doc.split('\n');
  const start = lines.indexOf('| Key | Type | Default | Meaning |');
  expect(start, 'docs/configuration.md has the reference table').toBeGreaterThan(-1);
  const keys: string[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const first = line.split(/(?<!\\)\|/)[1] ?? '';
    let previous: string | null = null;
    for (const m of first.matchAll(/`([^`]+)`/g)) {
      const token = m[1]!;
      const key: string = /[.[]/.test(token) || previous === null ? token : `${previous.replace(/[^.]+$/, '')}${token}`;
      keys.push(key);
      previous = key;
    }
  }
  return keys;
}

describe('configuration reference', () => {
  const keys = new Set<string>();
  schemaKeys(configSchema, '', keys);
  const doc = readFileSync(join(packageRoot(), 'docs/configuration.md'), 'utf8');
  const documented = documentedKeys(doc);
  // `X.*` documents every key under X at once (a mailbox's smtp override takes any key of smtp).
  const covered = (key: string) =>
    documented.includes(key) || documented.some((d) => d.endsWith('.*') && key.startsWith(d.slice(0, -1)));

  it('documents every key of the schema', () => {
    const leaves = [...keys].filter((k) => ![...keys].some((other) => other.startsWith(`${k}.`) || other.startsWith(`${k}[]`)));
    expect(leaves.length).toBeGreaterThan(80);
    expect(leaves.filter((k) => !covered(k))).toEqual([]);
  });

  it('documents no key the schema does not have', () => {
    const exists = (d: string) => keys.has(d) || (d.endsWith('.*') && [...keys].some((k) => k.startsWith(d.slice(0, -1))));
    expect(documented.filter((d) => !exists(d))).toEqual([]);
  });
});

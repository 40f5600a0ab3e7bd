// The README and the guides under docs/ link to each other by file and
// heading. A moved or renamed section must not leave a link that goes
// nowhere: every relative link names a file that exists and, with a
// #fragment, a heading in it (GitHub's anchor for the heading text).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';

const root = packageRoot();
const pages = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** Markdown outside fenced code blocks. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '');
}

function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const m of prose(readFileSync(file, 'utf8')).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

it('every relative link in the README and docs/ leads to a file and a heading that exist', () => {
  const broken: string[] = [];
  for (const page of pages) {
    const file = join(root, page);
    expect(existsSync(file), `${page} exists`).toBe(true);
    for (const m of prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      const link = m[1]!;
      if (/^[a-z]+:/.test(link)) continue;
      const [path, fragment] = link.split('#') as [string, string | undefined];
      const target = path === '' ? file : join(dirname(file), path);
      if (!existsSync(target)) broken.push(`${page}: ${link} (no file ${relative(root, target)})`);
      else if (fragment !== undefined && target.endsWith('.md') && !anchors(target).has(fragment))
        broken.push(`${page}: ${link} (no such heading)`);
    }
  }
  expect(broken).toEqual([]);
});

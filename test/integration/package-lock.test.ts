// `npm install` on a fresh checkout must change nothing and warn about no
// engine: the lock file matches package.json, and nothing in it needs a newer
// Node than package.json's engines. npm itself decides, on a copy of the two
// files, offline and with an empty cache (a complete lock needs no registry).

import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';

const dir = mkdtempSync(join(tmpdir(), 'ticketd-lock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('npm install changes nothing in package-lock.json and warns about no engine', async () => {
  for (const file of ['package.json', 'package-lock.json']) copyFileSync(join(packageRoot(), file), join(dir, file));
  const before = readFileSync(join(dir, 'package-lock.json'), 'utf8');
  const r = await promisify(execFile)(
    'npm',
    ['install', '--package-lock-only', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'],
    {
      cwd: dir,
      env: { ...process.env, npm_config_cache: join(dir, 'empty-cache') },
    },
  );
  expect(`${r.stdout}${r.stderr}`).not.toContain('EBADENGINE');
  expect(readFileSync(join(dir, 'package-lock.json'), 'utf8')).toBe(before);
});

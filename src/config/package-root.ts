import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT_NOT_FOUND = 'TICKETD_PACKAGE_ROOT_NOT_FOUND';

let cached: string | undefined;

/**
 * The folder holding ticketd's package.json. Walking up (rather than a fixed
 * `../..`) keeps this right both from `src/` under vitest and from `dist/src/`.
 */
export function packageRoot(): string {
  if (cached !== undefined) return cached;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      cached = dir;
      return dir;
    }
    if (dirname(dir) === dir) {
      throw Object.assign(new Error(`no package.json above ${start}`), { code: PACKAGE_ROOT_NOT_FOUND });
    }
  }
}

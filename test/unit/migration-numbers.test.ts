// A database records one schema version, the highest migration applied, and
// a migration numbered below it is never run there. So a number cannot be
// "free" below the top: a new migration takes the next number, and the
// numbers run 1, 2, 3, ... without a gap that invites filling in.

import { describe, expect, it } from 'vitest';
import { loadMigrations, migrationsDir } from '../../src/store/migrate.js';

describe('migration numbers', () => {
  for (const kind of ['sqlite', 'postgres'] as const) {
    it(`run from 1 without a gap or a repeat (${kind})`, () => {
      const versions = loadMigrations(migrationsDir(kind)).map((m) => m.version);
      expect(versions).toEqual(versions.map((_, i) => i + 1));
    });
  }
});

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { packageRoot } from '../config/package-root.js';

export const DB_TOO_NEW = 'TICKETD_DB_TOO_NEW';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The numbered plain-SQL files in `migrations/`, in order. */
export function loadMigrations(dir = join(packageRoot(), 'migrations')): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_[\w-]+\.sql$/.test(f))
    .map((f) => ({ version: Number.parseInt(f, 10), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

export class DatabaseTooNewError extends Error {
  readonly code = DB_TOO_NEW;
  constructor(dbVersion: number, codeVersion: number) {
    super(`database schema version ${dbVersion} is newer than this ticketd understands (${codeVersion}); upgrade ticketd`);
  }
}

/**
 * Applies pending migrations, each in its own transaction together with the
 * version bump, so a failure leaves the previous version intact. The version
 * lives in SQLite's user_version.
 */
export function migrate(db: Database, migrations: Migration[] = loadMigrations()): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.at(-1)?.version ?? 0;
  if (from > latest) throw new DatabaseTooNewError(from, latest);
  for (const m of migrations) {
    if (m.version <= from) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return { from, to: Math.max(from, latest) };
}

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root.js';
import type { SqlEngine, SqlMigration } from './sql-engine.js';

export const DB_TOO_NEW = 'TICKETD_DB_TOO_NEW';
export const MIGRATION_PENDING = 'TICKETD_MIGRATION_PENDING';

export type Migration = SqlMigration;

const MIGRATION_FILE = /^\d+_[\w-]+\.sql$/;

/** Each engine's migrations: SQLite's in `migrations/`, PostgreSQL's in `migrations/postgres/`. */
export function migrationsDir(kind: SqlEngine['kind']): string {
  return kind === 'sqlite' ? join(packageRoot(), 'migrations') : join(packageRoot(), 'migrations', kind);
}

/** The numbered plain-SQL files of a folder of migrations (SQLite's by default), in order. */
export function loadMigrations(dir = migrationsDir('sqlite')): Migration[] {
  return readdirSync(dir)
    .filter((f) => MIGRATION_FILE.test(f))
    .map((f) => ({ version: Number.parseInt(f, 10), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/** The schema version the migrations lead to, from the file names alone. */
export function latestMigrationVersion(dir = migrationsDir('sqlite')): number {
  return Math.max(
    0,
    ...readdirSync(dir)
      .filter((f) => MIGRATION_FILE.test(f))
      .map((f) => Number.parseInt(f, 10)),
  );
}

/**
 * A database with a schema older than this ticketd's. Only `start` and
 * `migrate` change the schema, so an upgrade happens when the operator runs
 * them rather than as a side effect of the first `tickets list` after it.
 */
export class MigrationPendingError extends Error {
  readonly code = MIGRATION_PENDING;
  constructor(path: string, dbVersion: number, codeVersion: number) {
    super(
      `database ${path} is at schema version ${dbVersion} and this ticketd needs ${codeVersion}: run \`ticketd migrate\` (or start the daemon) first`,
    );
  }
}

export class DatabaseTooNewError extends Error {
  readonly code = DB_TOO_NEW;
  constructor(dbVersion: number, codeVersion: number) {
    super(`database schema version ${dbVersion} is newer than this ticketd understands (${codeVersion}); upgrade ticketd`);
  }
}

/**
 * Applies the engine's pending migrations, each in its own transaction
 * together with the version bump, so a failure leaves the previous version
 * intact. A database already at the latest version costs one directory
 * listing and one version read: every process opening the store (one
 * `ingest` per delivered message) checks this.
 */
export async function applyMigrations(engine: SqlEngine, migrations?: Migration[]): Promise<{ from: number; to: number }> {
  const from = await engine.schemaVersion();
  const dir = migrationsDir(engine.kind);
  if (migrations === undefined) {
    const latest = latestMigrationVersion(dir);
    if (from > latest) throw new DatabaseTooNewError(from, latest);
    if (from === latest) return { from, to: from };
  }
  const all = migrations ?? loadMigrations(dir);
  const latest = all.at(-1)?.version ?? 0;
  if (from > latest) throw new DatabaseTooNewError(from, latest);
  for (const m of all) if (m.version > from) await engine.applyMigration(m);
  return { from, to: Math.max(from, latest) };
}

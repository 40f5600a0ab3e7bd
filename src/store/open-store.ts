// Which engine a `database` setting names, opened and brought to the
// current schema. A file path is the embedded SQLite database.

import { applyMigrations, latestMigrationVersion, migrationsDir } from './migrate.js';
import type { SqlEngine } from './sql-engine.js';
import { SqliteEngine } from './sqlite-engine.js';
import { SqlStore, type StoreParts } from './sql-store.js';

export interface OpenOptions {
  /** Apply pending migrations (default). `ticketd migrate` opens without and migrates itself. */
  migrate?: boolean;
  busyTimeoutMs?: number;
}

const SERVER_URL = /^postgres(ql)?:\/\//i;

/**
 * Opens the engine for `database`, migrates it (unless told not to) and
 * checks every named query against the schema, so a broken one fails here.
 * A database still waiting for `ticketd migrate` opens unchecked: its
 * queries name tables it does not have yet.
 */
export async function openEngine(database: string, opts: OpenOptions = {}): Promise<SqlEngine> {
  if (SERVER_URL.test(database)) throw new Error('this ticketd has no PostgreSQL engine; `database` must be a SQLite file path');
  const engine: SqlEngine = new SqliteEngine(database, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs });
  try {
    if (opts.migrate !== false) await applyMigrations(engine);
    if ((await pendingMigrations(engine)) === 0) await engine.checkQueries();
  } catch (err) {
    await engine.close();
    throw err;
  }
  return engine;
}

/** The store over the engine `database` names; see openEngine. */
export async function openStore(database: string, parts: StoreParts, opts: OpenOptions = {}): Promise<SqlStore> {
  return new SqlStore(await openEngine(database, opts), parts);
}

/** Migrations the database still lacks; 0 for one at (or beyond) the latest version. */
export async function pendingMigrations(engine: SqlEngine): Promise<number> {
  return Math.max(0, latestMigrationVersion(migrationsDir(engine.kind)) - (await engine.schemaVersion()));
}

// Which engine a `database` setting names, opened and brought to the
// current schema. A file path is the embedded SQLite database.

import { isPostgresUrl } from '../config/schema.js';
import { redactUrlPassword, resolveSecret } from '../config/secrets.js';
import { applyMigrations, latestMigrationVersion, MigrationPendingError, migrationsDir } from './migrate.js';
import type { SqlEngine } from './sql-engine.js';
import { SqliteEngine } from './sqlite-engine.js';
import { SqlStore, type StoreParts } from './sql-store.js';

export interface OpenOptions {
  /**
   * Which migrations opening applies: every pending one (`all`, the default:
   * `start`); none (`ticketd migrate`, which migrates itself); or only a
   * brand-new database's (`new`: every other command), refusing one with an
   * older schema with MigrationPendingError.
   */
  migrate?: 'all' | 'none' | 'new';
  busyTimeoutMs?: number;
  /** The config's `postgres` settings, for a PostgreSQL `database`. */
  postgres?: { passFile?: string | undefined; poolSize?: number | undefined } | undefined;
  /** Names this process in pg_stat_activity (PostgreSQL). */
  applicationName?: string | undefined;
  /** Told when a pooled PostgreSQL connection fails while idle; the pool replaces it. */
  onConnectionError?: ((err: Error) => void) | undefined;
}

/**
 * Opens the engine for `database`, migrates it (unless told not to) and
 * checks every named query against the schema, so a broken one fails here.
 * A database still waiting for `ticketd migrate` opens unchecked: its
 * queries name tables it does not have yet.
 */
export async function openEngine(database: string, opts: OpenOptions = {}): Promise<SqlEngine> {
  const engine: SqlEngine = isPostgresUrl(database)
    ? await postgresEngine(database, opts)
    : new SqliteEngine(database, opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs });
  try {
    const migrate = opts.migrate ?? 'all';
    if (migrate === 'new') await refusePendingMigrations(engine, database);
    if (migrate !== 'none') await applyMigrations(engine);
    if ((await pendingMigrations(engine)) === 0) await engine.checkQueries();
  } catch (err) {
    await engine.close();
    throw err;
  }
  return engine;
}

/**
 * PostgreSQL at a `postgres://` URL: the password from the URL, else
 * `postgres.passFile` (a file or `credential:NAME`, read at each new
 * connection), else PGPASSWORD or ~/.pgpass.
 */
async function postgresEngine(url: string, opts: OpenOptions): Promise<SqlEngine> {
  // The PostgreSQL client is loaded only for a PostgreSQL database: `ingest`,
  // started once per message, does not pay for it on SQLite.
  const { PostgresEngine } = await import('./postgres-engine.js');
  const passFile = opts.postgres?.passFile;
  return new PostgresEngine({
    url,
    password: passFile === undefined ? undefined : async () => (await resolveSecret({ passFile })).value,
    poolSize: opts.postgres?.poolSize,
    applicationName: opts.applicationName,
    onConnectionError: opts.onConnectionError,
  });
}

/** The store over the engine `database` names; see openEngine. */
export async function openStore(database: string, parts: StoreParts, opts: OpenOptions = {}): Promise<SqlStore> {
  return new SqlStore(await openEngine(database, opts), parts);
}

/** Migrations the database still lacks; 0 for one at (or beyond) the latest version. */
export async function pendingMigrations(engine: SqlEngine): Promise<number> {
  return Math.max(0, latestMigrationVersion(migrationsDir(engine.kind)) - (await engine.schemaVersion()));
}

/**
 * Only `start` and `migrate` upgrade a schema, whichever the engine. A
 * brand-new database (version 0: nothing in it yet) is still set up by
 * whichever command opens it first, so the first `ingest` an MTA runs after
 * installation takes its mail.
 */
async function refusePendingMigrations(engine: SqlEngine, database: string): Promise<void> {
  const version = await engine.schemaVersion();
  const latest = latestMigrationVersion(migrationsDir(engine.kind));
  if (version > 0 && version < latest) throw new MigrationPendingError(redactUrlPassword(database), version, latest);
}

import { join } from 'node:path';
import type pg from 'pg';
import { packageRoot } from '../config/package-root.js';
import { DatabaseTooNewError, loadMigrations, type Migration } from './migrate.js';

/**
 * PostgreSQL's migrations mirror SQLite's, number for number, in PostgreSQL's
 * spelling: a schema version means the same tables on either engine.
 */
export function postgresMigrationsDir(): string {
  return join(packageRoot(), 'migrations', 'postgres');
}

// Every node that starts migrates; this session lock makes the second wait
// for the first and then find nothing left to do. hashtext gives a fixed
// key every node computes the same way, readable in the SQL that takes it.
const LOCK = "hashtext('ticketd:migrate')";

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS ticketd_schema (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

/** The schema version of the database: the newest migration applied, 0 for an empty database. */
export async function postgresSchemaVersion(db: Pick<pg.Pool | pg.PoolClient, 'query'>): Promise<number> {
  const table = await db.query<{ t: string | null }>("SELECT to_regclass('ticketd_schema') AS t");
  if (table.rows[0]?.t == null) return 0;
  const result = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM ticketd_schema');
  return Number(result.rows[0]?.v ?? 0);
}

/**
 * Applies the migrations the database lacks, each in its own transaction with
 * its row in ticketd_schema, so a failure leaves the previous version intact
 * (PostgreSQL's DDL is transactional). Refuses a database newer than the
 * code: an older node must not run against a schema it does not know.
 */
export async function migratePostgres(
  pool: pg.Pool,
  migrations: Migration[] = loadMigrations(postgresMigrationsDir()),
  now: () => number = Date.now,
): Promise<{ from: number; to: number }> {
  const latest = migrations.at(-1)?.version ?? 0;
  const client = await pool.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(${LOCK})`);
    try {
      await client.query(VERSION_TABLE);
      const from = await postgresSchemaVersion(client);
      if (from > latest) throw new DatabaseTooNewError(from, latest);
      for (const m of migrations) {
        if (m.version <= from) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO ticketd_schema (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw Object.assign(err as Error, { message: `migration ${m.name} failed: ${(err as Error).message}` });
        }
      }
      return { from, to: Math.max(from, latest) };
    } finally {
      await client.query(`SELECT pg_advisory_unlock(${LOCK})`);
    }
  } finally {
    client.release();
  }
}

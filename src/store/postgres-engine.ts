import { join } from 'node:path';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { packageRoot } from '../config/package-root.js';
import { loadNamedQueries } from './named-queries.js';
import { bindParams, toPostgresSql, type PostgresStatement } from './postgres-sql.js';
import type { SqlEngine, SqlParams, SqlRunResult, SqlTransaction } from './sql-engine.js';

export const PG_QUERY_INVALID = 'TICKETD_PG_QUERY_INVALID';

const BOOL_OID = 16;
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const DEFAULT_POOL_SIZE = 10;

/** True for the URLs that choose PostgreSQL as the store (`database` in the config). */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

export interface PostgresEngineOptions {
  /** `postgres://` or `postgresql://` URL; fields it leaves out come from the PG* environment, as with psql. */
  url: string;
  /**
   * The password when the URL has none, asked for at each new connection so a
   * rotated credential file is picked up. Without either, PGPASSWORD or
   * ~/.pgpass applies.
   */
  password?: (() => Promise<string>) | undefined;
  /** Connections the engine keeps open at most; every transaction holds one for its length. */
  poolSize?: number | undefined;
  /** Shown in pg_stat_activity, so an operator can tell the nodes' sessions apart. */
  applicationName?: string | undefined;
  /** Told about a pooled connection that failed while idle (the server restarted, say); the pool replaces it. */
  onConnectionError?: ((err: Error) => void) | undefined;
  /** The shared named queries; overrides for PostgreSQL come from `overridesDir`. */
  queries?: ReadonlyMap<string, string> | undefined;
  overridesDir?: string | undefined;
}

/** A query that PostgreSQL refused when the engine checked it at open. */
export class PostgresQueryError extends Error {
  readonly code = PG_QUERY_INVALID;
}

/**
 * The shared named queries with this engine's overrides laid over them. An
 * override must replace an existing name: one that names nothing is a typo
 * or a query that was renamed, and would silently stop applying.
 */
export function loadPostgresQueries(
  base: ReadonlyMap<string, string> = loadNamedQueries(),
  overridesDir = join(packageRoot(), 'src', 'store', 'postgres'),
): Map<string, string> {
  const queries = new Map(base);
  for (const [name, sql] of loadNamedQueries(overridesDir)) {
    if (!base.has(name)) throw new PostgresQueryError(`PostgreSQL override ${name} (${overridesDir}) replaces no shared named query`);
    queries.set(name, sql);
  }
  return queries;
}

interface Named extends PostgresStatement {
  /** The prepared statement's name on each connection (pg prepares it on first use). */
  name: string;
}

/**
 * SqlEngine over a pg pool. Outside a transaction each query takes any pooled
 * connection; a transaction holds one connection from BEGIN to COMMIT, and a
 * savepoint nests inside it. Statements run as prepared statements, prepared
 * once per connection.
 */
export class PostgresEngine implements SqlEngine {
  readonly kind = 'postgres' as const;

  private constructor(
    readonly pool: pg.Pool,
    private readonly statements: ReadonlyMap<string, Named>,
  ) {}

  /**
   * Opens the pool and checks every named query with PREPARE, so a query the
   * schema does not fit fails here and not on the first message that needs
   * it. The schema must be migrated first (see postgres-migrate.ts).
   */
  static async open(opts: PostgresEngineOptions): Promise<PostgresEngine> {
    const pool = createPool(opts);
    try {
      const queries = opts.queries ?? loadPostgresQueries(undefined, opts.overridesDir);
      const statements = new Map<string, Named>();
      let n = 0;
      for (const [name, sql] of queries) statements.set(name, { ...toPostgresSql(sql), name: `ticketd_${n++}_${name}` });
      await checkStatements(pool, statements);
      return new PostgresEngine(pool, statements);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
  }

  async all<T>(name: string, params?: SqlParams): Promise<T[]> {
    return runAll<T>(this.pool, this.statement(name), name, params);
  }

  async get<T>(name: string, params?: SqlParams): Promise<T | undefined> {
    return (await this.all<T>(name, params))[0];
  }

  async run(name: string, params?: SqlParams): Promise<SqlRunResult> {
    return runChanges(this.pool, this.statement(name), name, params);
  }

  async transaction<T>(body: (tx: SqlTransaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // a connection whose ROLLBACK failed is in an unknown state and is not pooled again
    let discard = false;
    try {
      await client.query('BEGIN');
      const result = await body(new PostgresTransaction(client, (name) => this.statement(name)));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        discard = true;
      });
      throw err;
    } finally {
      client.release(discard);
    }
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
  }

  private statement(name: string): Named {
    const statement = this.statements.get(name);
    if (statement === undefined) throw new Error(`unknown named query ${name}`);
    return statement;
  }
}

class PostgresTransaction implements SqlTransaction {
  private savepoints = 0;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly statement: (name: string) => Named,
  ) {}

  async all<T>(name: string, params?: SqlParams): Promise<T[]> {
    return runAll<T>(this.client, this.statement(name), name, params);
  }

  async get<T>(name: string, params?: SqlParams): Promise<T | undefined> {
    return (await this.all<T>(name, params))[0];
  }

  async run(name: string, params?: SqlParams): Promise<SqlRunResult> {
    return runChanges(this.client, this.statement(name), name, params);
  }

  async savepoint<T>(body: (sp: SqlTransaction) => Promise<T>): Promise<T> {
    const name = `sp_${++this.savepoints}`;
    await this.client.query(`SAVEPOINT ${name}`);
    let result: T;
    try {
      result = await body(this);
    } catch (err) {
      await this.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
      await this.client.query(`RELEASE SAVEPOINT ${name}`);
      throw err;
    }
    await this.client.query(`RELEASE SAVEPOINT ${name}`);
    return result;
  }
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

async function runAll<T>(on: Queryable, statement: Named, queryName: string, params: SqlParams | undefined): Promise<T[]> {
  const result = await on.query({ name: statement.name, text: statement.text, values: bindParams(statement, queryName, params) });
  return result.rows as T[];
}

async function runChanges(on: Queryable, statement: Named, queryName: string, params: SqlParams | undefined): Promise<SqlRunResult> {
  const result = await on.query({ name: statement.name, text: statement.text, values: bindParams(statement, queryName, params) });
  return { changes: result.rowCount ?? 0 };
}

/**
 * The pool with SQLite's value types, so the store reads the same rows from
 * either engine: 64-bit integers (ids, millisecond times) and numeric
 * aggregates (sum, avg) come back as numbers rather than pg's default strings
 * (every value the schema holds is below 2^53), and a comparison selected as a
 * column is 1 or 0, as SQLite has no booleans.
 */
export function createPool(opts: Pick<PostgresEngineOptions, 'url' | 'password' | 'poolSize' | 'applicationName' | 'onConnectionError'>): pg.Pool {
  // parsed here rather than handed over as connectionString, which pg lets
  // override everything else, including the password given below
  const { password: urlPassword, ...fromUrl } = parseIntoClientConfig(opts.url);
  const config: pg.PoolConfig = {
    ...fromUrl,
    max: opts.poolSize ?? DEFAULT_POOL_SIZE,
    application_name: opts.applicationName ?? 'ticketd',
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
        if (oid === INT8_OID || oid === NUMERIC_OID) return Number;
        if (oid === BOOL_OID) return (value: string) => (value === 't' ? 1 : 0);
        return pg.types.getTypeParser(oid, format);
      }) as pg.CustomTypesConfig['getTypeParser'],
    },
  };
  if (typeof urlPassword === 'string' && urlPassword !== '') config.password = urlPassword;
  else if (opts.password !== undefined) config.password = opts.password;
  const pool = new pg.Pool(config);
  // an idle connection's error (server restart, network cut) is emitted on the
  // pool; without a listener it would end the process
  pool.on('error', (err) => opts.onConnectionError?.(err));
  return pool;
}

async function checkStatements(pool: pg.Pool, statements: ReadonlyMap<string, Named>): Promise<void> {
  const client = await pool.connect();
  const problems: string[] = [];
  try {
    for (const [name, statement] of statements) {
      try {
        await client.query(`PREPARE ticketd_check AS ${statement.text}`);
        await client.query('DEALLOCATE ticketd_check');
      } catch (err) {
        problems.push(`${name}: ${(err as Error).message}`);
      }
    }
  } finally {
    client.release();
  }
  if (problems.length > 0) throw new PostgresQueryError(`PostgreSQL refused named queries:\n  ${problems.join('\n  ')}`);
}

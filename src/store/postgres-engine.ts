import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { storeQueries } from './named-queries.js';
import type { QueryName } from './query-names.js';
import { bindParams, toPostgresSql, type PostgresStatement } from './postgres-sql.js';
import {
  type CommitWait,
  GuardedTransaction,
  type SqlEngine,
  type SqlMigration,
  type SqlParams,
  type SqlRunResult,
  type SqlSession,
  type SqlTransaction,
  type TransactionLock,
  type WriteProbe,
} from './sql-engine.js';

const BOOL_OID = 16;
const INT8_OID = 20;
const NUMERIC_OID = 1700;
const DEFAULT_POOL_SIZE = 10;
// Connections kept apart for the short 'rows' transactions: the outbox's
// claims and sent marks and the node's heartbeat. Intake batches of many
// mailboxes can hold every connection of the main pool for seconds at a
// time; queued behind them, a sent mark came seconds after the server
// accepted the mail (each second a kill sends again) and a heartbeat came
// after its lease, so the other nodes took the mailboxes of a live node. The
// outbox worker holds at most three of these at once (a claim, a composed
// batch, a sent mark), the heartbeat one.
const ROW_POOL_SIZE = 4;

// Every node migrates when it starts; this transaction lock makes a second
// node wait for the first's migration and then find it applied. hashtext
// gives a fixed key every node computes alike, readable in the SQL.
const MIGRATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ticketd:migrate'))";

// The store's write transactions and what keeps them apart across nodes
// (TransactionLock in sql-engine.ts). One advisory lock, `ticketd:write`, is
// taken exclusively by the rules that read and decide over many rows at once
// and were written for one writer (ticket commands, SLA passes, quarantine
// releases: rare, so running them alone costs little), and shared by the
// intake, which then also takes a lock per key it decides on: its mailbox
// (the queue position and cursor), each Message-ID (one ticket for a message
// copied to several mailboxes) and each reply address (the per-sender
// acknowledgement limits). Intake of different mailboxes thus commits in
// parallel on every node; what stays exactly once there is kept by those
// keys and by the unique IMAP receipt and Message-ID keys. The outbox takes
// none: its claims lock their rows with SKIP LOCKED and its sent marks
// update one row by id, so a send is recorded the moment it is accepted even
// while a long exclusive transaction runs.
const WRITE_LOCK_KEY = "hashtext('ticketd:write')";
const EXCLUSIVE = `SELECT pg_advisory_xact_lock(${WRITE_LOCK_KEY})`;
const SHARED = `SELECT pg_advisory_xact_lock_shared(${WRITE_LOCK_KEY})`;
// Keys are taken in sorted order in one statement, so two keyed transactions
// never wait for each other crosswise. hashtext collisions only make two
// unrelated keys wait for each other.
const KEYED = "SELECT pg_advisory_xact_lock(hashtext('ticketd:key:' || k)) FROM unnest($1::text[]) AS k ORDER BY k";

// A node that stops mid-transaction (a network cut, a stopped process that
// still holds its socket) would hold the write lock; the server ends such a
// session after this long.
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

const VERSION_TABLE = `CREATE TABLE IF NOT EXISTS ticketd_schema (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at BIGINT NOT NULL
)`;

export interface PostgresEngineOptions<Name extends string = QueryName> {
  /** `postgres://` or `postgresql://` URL; what it leaves out comes from the PG* environment, as with psql. */
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
  /** The named queries; by default every `.sql` file of the query folders with the `.postgres.sql` overrides. */
  queries?: ReadonlyMap<Name, string> | undefined;
}

interface Named extends PostgresStatement {
  /** The prepared statement's name on each connection (pg prepares it there on first use). */
  name: string;
}

/**
 * SqlEngine over a pg pool. Outside a transaction each statement takes any
 * pooled connection; a transaction holds one connection from BEGIN to COMMIT
 * and savepoints nest inside it. Write transactions are kept apart across
 * all nodes as their TransactionLock asks; snapshots take no lock. Statements run as prepared
 * statements, prepared once per connection.
 */
export class PostgresEngine<Name extends string = QueryName> implements SqlEngine<Name> {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;
  /** The connections of 'rows' transactions (ROW_POOL_SIZE). */
  private readonly rowPool: pg.Pool;
  private readonly statements = new Map<string, Named>();
  /**
   * The transaction the current async context runs in: a body that used the
   * engine instead of its `tx` would take a second connection, and with the
   * pool exhausted wait for ever; this turns it into an error, as on SQLite.
   */
  private readonly within = new AsyncLocalStorage<{ open: boolean }>();

  constructor(opts: PostgresEngineOptions<Name>) {
    this.pool = createPool(opts);
    this.rowPool = createPool({ ...opts, poolSize: ROW_POOL_SIZE });
    let n = 0;
    for (const [name, sql] of opts.queries ?? storeQueries('postgres')) {
      this.statements.set(name, { ...toPostgresSql(sql), name: `ticketd_${n++}_${name}` });
    }
  }

  // ---- statements ------------------------------------------------------------

  private statement(name: string): Named {
    const statement = this.statements.get(name);
    if (statement === undefined) throw new Error(`unknown named query ${name}`);
    return statement;
  }

  /** PREPAREs every named query on one connection and names all that PostgreSQL refuses. */
  async checkQueries(): Promise<void> {
    const client = await this.pool.connect();
    const problems: string[] = [];
    try {
      for (const [name, statement] of this.statements) {
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
    if (problems.length > 0) throw new Error(`PostgreSQL refused named queries:\n  ${problems.join('\n  ')}`);
  }

  all<T>(name: Name, params?: SqlParams): Promise<T[]> {
    return this.outside(() => runAll<T>(this.pool, this.statement(name), name, params));
  }

  async get<T>(name: Name, params?: SqlParams): Promise<T | undefined> {
    return (await this.all<T>(name, params))[0];
  }

  run(name: Name, params?: SqlParams): Promise<SqlRunResult> {
    return this.outside(() => runChanges(this.pool, this.statement(name), name, params));
  }

  private async outside<T>(fn: () => Promise<T>): Promise<T> {
    if (this.within.getStore()?.open)
      throw new Error("the engine was used inside its own transaction: use the transaction's session");
    return fn();
  }

  // ---- transactions ----------------------------------------------------------

  async transaction<T>(
    body: (tx: SqlTransaction<Name>) => Promise<T>,
    lock: TransactionLock = 'exclusive',
    wait: CommitWait = 'disk',
  ): Promise<T> {
    // the server reports the commit before its WAL is flushed (wal_writer_delay later at most)
    const begin = wait === 'engine' ? ['BEGIN', 'SET LOCAL synchronous_commit = off'] : ['BEGIN'];
    if (lock === 'exclusive') return this.begin(this.pool, [...begin, EXCLUSIVE], body);
    if (lock === 'rows') return this.begin(this.rowPool, begin, body);
    const keys = [...new Set(lock.keys)];
    return this.begin(this.pool, [...begin, SHARED, { text: KEYED, values: [keys] }], body);
  }

  /** REPEATABLE READ gives the whole body one snapshot; READ ONLY takes no write locks. */
  snapshot<T>(body: (s: SqlSession<Name>) => Promise<T>): Promise<T> {
    return this.begin(this.pool, ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'], body);
  }

  private async begin<T>(
    pool: pg.Pool,
    how: (string | { text: string; values: unknown[] })[],
    body: (tx: SqlTransaction<Name>) => Promise<T>,
  ): Promise<T> {
    if (this.within.getStore()?.open) throw new Error('transactions do not nest: use savepoint');
    const client = await pool.connect();
    const mark = { open: true };
    // a connection whose ROLLBACK failed is in an unknown state and is not pooled again
    let discard = false;
    try {
      for (const statement of how) {
        if (typeof statement === 'string') await client.query(statement);
        else await client.query(statement.text, statement.values);
      }
      const tx = new PostgresTransaction(client, (name) => this.statement(name), 0);
      try {
        const value = await this.within.run(mark, () => body(tx));
        mark.open = false;
        tx.end();
        await client.query('COMMIT');
        for (const fn of tx.committed) fn();
        return value;
      } catch (err) {
        mark.open = false;
        tx.end();
        await client.query('ROLLBACK').catch(() => {
          discard = true;
        });
        throw err;
      }
    } finally {
      client.release(discard);
    }
  }

  // ---- schema ----------------------------------------------------------------

  async schemaVersion(): Promise<number> {
    return schemaVersionOf(this.pool);
  }

  async applyMigration(m: SqlMigration): Promise<boolean> {
    const client = await this.pool.connect();
    let discard = false;
    try {
      await client.query('BEGIN');
      try {
        await client.query(MIGRATION_LOCK);
        await client.query(VERSION_TABLE);
        if ((await schemaVersionOf(client)) >= m.version) {
          await client.query('ROLLBACK');
          return false;
        }
        await client.query(m.sql);
        await client.query('INSERT INTO ticketd_schema (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
        await client.query('COMMIT');
        return true;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {
          discard = true;
        });
        throw Object.assign(err as Error, { message: `migration ${m.name} failed: ${(err as Error).message}` });
      }
    } finally {
      client.release(discard);
    }
  }

  /**
   * A transaction that runs the write probe: fails on a read-only server (a
   * standby, default_transaction_read_only), one refusing connections, or
   * with the role's rights revoked. Room to grow is the server's to watch:
   * its disk is not visible from here.
   */
  async probeWrite(): Promise<WriteProbe> {
    try {
      // The store's probe, whatever queries the engine was opened with.
      await this.transaction((tx) => (tx as SqlTransaction<string>).run('readiness-write-probe' satisfies QueryName));
      return { ok: true };
    } catch (err) {
      return { ok: false, code: (err as { code?: string }).code ?? 'UNKNOWN', message: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    if (!this.pool.ended) await this.pool.end();
    if (!this.rowPool.ended) await this.rowPool.end();
  }
}

/** A transaction or savepoint on the pooled connection it holds; see GuardedTransaction. */
class PostgresTransaction extends GuardedTransaction<string> {
  protected readonly statements: SqlSession<string>;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly statement: (name: string) => Named,
    depth: number,
  ) {
    super(depth);
    this.statements = {
      all: async <T>(name: string, params?: SqlParams) => runAll<T>(client, statement(name), name, params),
      get: async <T>(name: string, params?: SqlParams) => (await runAll<T>(client, statement(name), name, params))[0],
      run: async (name: string, params?: SqlParams) => runChanges(client, statement(name), name, params),
    };
  }

  protected async exec(command: string): Promise<void> {
    await this.client.query(command);
  }

  protected nested(depth: number): PostgresTransaction {
    return new PostgresTransaction(this.client, this.statement, depth);
  }
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

async function runAll<T>(on: Queryable, statement: Named, queryName: string, params: SqlParams | undefined): Promise<T[]> {
  const result = await on.query({ name: statement.name, text: statement.text, values: bindParams(statement, queryName, params) });
  return result.rows as T[];
}

async function runChanges(
  on: Queryable,
  statement: Named,
  queryName: string,
  params: SqlParams | undefined,
): Promise<SqlRunResult> {
  const result = await on.query({ name: statement.name, text: statement.text, values: bindParams(statement, queryName, params) });
  return { changes: result.rowCount ?? 0 };
}

async function schemaVersionOf(db: Queryable): Promise<number> {
  const table = await db.query<{ t: string | null }>("SELECT to_regclass('ticketd_schema')::text AS t");
  if (table.rows[0]?.t == null) return 0;
  const result = await db.query<{ v: number | null }>('SELECT max(version) AS v FROM ticketd_schema');
  return result.rows[0]?.v ?? 0;
}

/**
 * The pool with SQLite's value types, so the store reads the same rows from
 * either engine: 64-bit integers (ids, millisecond times) and numeric
 * aggregates (sum, avg) come back as numbers rather than pg's default strings
 * (every value the schema holds is below 2^53), and a comparison selected as a
 * column is 1 or 0, as SQLite has no booleans.
 */
export function createPool(
  opts: Pick<PostgresEngineOptions, 'url' | 'password' | 'poolSize' | 'applicationName' | 'onConnectionError'>,
): pg.Pool {
  // parsed here rather than handed over as connectionString, which pg lets
  // override everything else, including the password given below
  const { password: urlPassword, ...fromUrl } = parseIntoClientConfig(opts.url);
  const config: pg.PoolConfig = {
    ...fromUrl,
    max: opts.poolSize ?? DEFAULT_POOL_SIZE,
    application_name: opts.applicationName ?? 'ticketd',
    // sent with the connection's startup message, so it holds from the first
    // statement on; a SET issued on 'connect' raced the caller's first query
    // (pg warns about a query issued while another runs)
    idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
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

import { AsyncLocalStorage } from 'node:async_hooks';
import { existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { createPrivateFileSync, makePrivateDirSync, restrictFileSync } from '../core/private-files.js';
import { storeQueries } from './named-queries.js';
import type { QueryName } from './query-names.js';
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

export interface SqliteEngineOptions<Name extends string = QueryName> {
  busyTimeoutMs?: number;
  /** The named queries; by default the store's, from the `.sql` files of the query folders (see named-queries.ts). */
  queries?: ReadonlyMap<Name, string>;
  /**
   * Opens an existing database only to read it, changing nothing on disk: no
   * file or folder created or made private, no journal mode set (`ticketd
   * doctor`, and `ticketd backup` reading its copy).
   */
  readOnly?: boolean;
}

/** Fewer spare pages than this (one insert with its index updates) and the next write may fail. */
const MIN_SPARE_PAGES = 16;
/** Less free space than this on the database's file system and the next write, or WAL growth, may fail. */
const MIN_FREE_DISK_BYTES = 16 * 1024 * 1024;

/**
 * The embedded engine over better-sqlite3. Statements run synchronously and
 * resolve at once; what needs a guard is the transaction, which now spans
 * awaits: other work of the process may run between its statements, on the
 * same connection. An in-process lock serialises transactions and makes a
 * statement run outside one wait until it ends, so nothing ever lands inside
 * someone else's transaction. Write transactions begin IMMEDIATE: one that
 * reads first and upgrades to writing later would otherwise fail at once
 * with SQLITE_BUSY when another process (the CLI, `ingest`) holds the lock,
 * instead of waiting out the busy timeout.
 */
export class SqliteEngine<Name extends string = QueryName> implements SqlEngine<Name> {
  readonly kind = 'sqlite' as const;
  /** The connection itself, for what only SQLite has (online backup, tests that look inside). */
  readonly db: Database;
  private readonly sql: ReadonlyMap<string, string>;
  private readonly prepared = new Map<string, Statement>();
  /** Resolves when the transaction in progress (if any) has ended; the tail of the queue waiting for the lock. */
  private lockTail: Promise<void> | null = null;
  /**
   * The transaction the current async context runs in. A body that used the
   * engine instead of its `tx` would wait for its own lock for ever; this
   * turns that hang into an error.
   */
  private readonly within = new AsyncLocalStorage<{ open: boolean }>();

  constructor(
    readonly path: string,
    opts: SqliteEngineOptions<Name> = {},
  ) {
    this.sql = opts.queries ?? storeQueries('sqlite');
    if (opts.readOnly) {
      this.db = new BetterSqlite3(path, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5000 });
      return;
    }
    if (path !== ':memory:') {
      // SQLite gives -wal and -shm the mode of the database file, so a private
      // database file keeps all three private.
      makePrivateDirSync(dirname(path));
      if (existsSync(path)) restrictFileSync(path);
      else createPrivateFileSync(path);
    }
    this.db = new BetterSqlite3(path);
    this.db.pragma('journal_mode = WAL');
    if (path !== ':memory:') for (const suffix of ['-wal', '-shm']) restrictFileSync(`${path}${suffix}`);
    // We move or delete mail on the server only after a commit, so a
    // committed row must survive a power cut: FULL syncs the WAL on commit.
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    this.db.pragma('foreign_keys = ON');
    // Deleted and overwritten content is zeroed, so a status link redacted
    // after sending does not linger in free pages of the file.
    this.db.pragma('secure_delete = ON');
  }

  // ---- statements ------------------------------------------------------------

  /**
   * A prepared named query. Every one is prepared by checkQueries once the
   * schema is current; a database still waiting for `ticketd migrate` lacks
   * the tables they name, and then each is prepared on first use.
   */
  private statement(name: string): Statement {
    let stmt = this.prepared.get(name);
    if (!stmt) {
      const sql = this.sql.get(name);
      if (sql === undefined) throw new Error(`unknown named query ${name}`);
      stmt = this.db.prepare(sql);
      this.prepared.set(name, stmt);
    }
    return stmt;
  }

  async checkQueries(): Promise<void> {
    for (const name of this.sql.keys()) this.statement(name);
  }

  /** The synchronous core every session shares; `params` bound by name (an object) or position (an array). */
  private readonly now: SqlSession<string> = {
    all: async <T>(name: string, params?: SqlParams) => bind(this.statement(name), params, 'all') as T[],
    get: async <T>(name: string, params?: SqlParams) => bind(this.statement(name), params, 'get') as T | undefined,
    run: async (name: string, params?: SqlParams) => ({
      changes: (bind(this.statement(name), params, 'run') as { changes: number }).changes,
    }),
  };

  all<T>(name: Name, params?: SqlParams): Promise<T[]> {
    return this.lockTail === null ? this.now.all<T>(name, params) : this.outside(() => this.now.all<T>(name, params));
  }

  get<T>(name: Name, params?: SqlParams): Promise<T | undefined> {
    return this.lockTail === null ? this.now.get<T>(name, params) : this.outside(() => this.now.get<T>(name, params));
  }

  run(name: Name, params?: SqlParams): Promise<SqlRunResult> {
    return this.lockTail === null ? this.now.run(name, params) : this.outside(() => this.now.run(name, params));
  }

  /** A statement issued while a transaction is open waits for it, in turn with the transactions queued before it. */
  private async outside<T>(fn: () => Promise<T>): Promise<T> {
    if (this.within.getStore()?.open)
      throw new Error("the engine was used inside its own transaction: use the transaction's session");
    const release = await this.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  // ---- transactions ----------------------------------------------------------

  /** Waits for the connection; the returned function hands it to the next in line. */
  private async lock(): Promise<() => void> {
    const before = this.lockTail;
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before === null ? mine : before.then(() => mine);
    this.lockTail = tail;
    if (before !== null) await before;
    return () => {
      release();
      if (this.lockTail === tail) this.lockTail = null;
    };
  }

  /** Takes no TransactionLock: with one writer at a time, SQLite's write lock already keeps every rule. */
  transaction<T>(body: (tx: SqlTransaction<Name>) => Promise<T>, _lock?: TransactionLock, wait: CommitWait = 'disk'): Promise<T> {
    return this.begin('BEGIN IMMEDIATE', body, wait);
  }

  /**
   * A deferred transaction takes no write lock: it reads one snapshot of the
   * database (WAL) while other processes go on writing.
   */
  snapshot<T>(body: (s: SqlSession<Name>) => Promise<T>): Promise<T> {
    return this.begin('BEGIN', body);
  }

  private async begin<T>(how: string, body: (tx: SqlTransaction<Name>) => Promise<T>, wait: CommitWait = 'disk'): Promise<T> {
    if (this.within.getStore()?.open) throw new Error('transactions do not nest: use savepoint');
    const release = await this.lock();
    const mark = { open: true };
    try {
      // In WAL mode NORMAL writes the commit to the WAL without an fsync; the
      // next FULL commit's fsync of the WAL takes it to the disk as well.
      if (wait === 'engine') this.db.pragma('synchronous = NORMAL');
      this.db.exec(how);
      const tx = new SqliteTransaction(this.now, this.db, 0);
      let value: T;
      try {
        value = await this.within.run(mark, () => body(tx));
        mark.open = false;
        tx.end();
        this.db.exec('COMMIT');
        for (const fn of tx.committed) fn();
      } catch (err) {
        mark.open = false;
        tx.end();
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      return value;
    } finally {
      if (wait === 'engine') this.db.pragma('synchronous = FULL');
      release();
    }
  }

  // ---- schema ----------------------------------------------------------------

  async schemaVersion(): Promise<number> {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  async applyMigration(m: SqlMigration): Promise<boolean> {
    const release = await this.lock();
    try {
      // BEGIN IMMEDIATE holds SQLite's write lock from the version check to
      // the commit: a second process migrating at once waits, then skips.
      return this.db
        .transaction(() => {
          if ((this.db.pragma('user_version', { simple: true }) as number) >= m.version) return false;
          this.db.exec(m.sql);
          this.db.pragma(`user_version = ${m.version}`);
          return true;
        })
        .immediate();
    } finally {
      release();
    }
  }

  /**
   * The lock alone says nothing about room: a full database (its
   * max_page_count reached, or its file system out of space) still takes the
   * lock, then fails every insert with SQLITE_FULL.
   */
  async probeWrite(): Promise<WriteProbe> {
    const release = await this.lock();
    try {
      // Changes nothing, but has to take the write lock: fails when the
      // database is read-only, locked by another writer past the busy
      // timeout, or opened query-only.
      this.db.transaction(() => this.statement('readiness-write-probe' satisfies QueryName).run()).immediate();
    } catch (err) {
      return { ok: false, code: (err as { code?: string }).code ?? 'UNKNOWN', message: (err as Error).message };
    } finally {
      release();
    }
    const pragma = (name: string) => this.db.pragma(name, { simple: true }) as number;
    const spare = pragma('max_page_count') - pragma('page_count') + pragma('freelist_count');
    if (spare < MIN_SPARE_PAGES) {
      return { ok: false, code: 'SQLITE_FULL', message: `the database is at its max_page_count (${spare} page(s) to spare)` };
    }
    if (!this.db.memory) {
      const fs = statfsSync(dirname(this.db.name));
      const free = fs.bavail * fs.bsize;
      if (free < MIN_FREE_DISK_BYTES) {
        return { ok: false, code: 'SQLITE_FULL', message: `only ${free} bytes free on the database's file system` };
      }
    }
    return { ok: true };
  }

  async close(): Promise<void> {
    if (this.lockTail !== null) await this.lockTail;
    if (this.db.open) this.db.close();
  }
}

/** A transaction or savepoint on the engine's one connection; see GuardedTransaction. */
class SqliteTransaction extends GuardedTransaction<string> {
  constructor(
    protected readonly statements: SqlSession<string>,
    private readonly db: Database,
    depth: number,
  ) {
    super(depth);
  }

  protected exec(command: string): void {
    this.db.exec(command);
  }

  protected nested(depth: number): SqliteTransaction {
    return new SqliteTransaction(this.statements, this.db, depth);
  }

  protected override inTransaction(): boolean {
    return this.db.inTransaction;
  }
}

function bind(stmt: Statement, params: SqlParams | undefined, how: 'all' | 'get' | 'run'): unknown {
  if (params === undefined) return stmt[how]();
  if (Array.isArray(params)) return stmt[how](...(params as unknown[]));
  return stmt[how](params);
}

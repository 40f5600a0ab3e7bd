// The seam between the store's rules and a database engine. The store's
// classes (intake, outbox queue, ticket commands, IMAP receipts, SLA and
// status-page storage) are written once over this interface; an engine
// (embedded SQLite, PostgreSQL) only runs named queries and transactions.
//
// Named queries live in `.sql` files (`-- name: x` blocks) with `@name`
// parameters, in the SQL both engines understand (RETURNING, ON CONFLICT ...
// DO UPDATE/NOTHING); an engine may override a name with its own dialect
// where they differ (`x.sqlite.sql`, `x.postgres.sql`; see named-queries.ts).
// Every query is prepared when the engine opens at the current schema
// (checkQueries). The names are typed (QueryName, query-names.ts): a name
// the code calls but no file defines is a type error, and an engine on the
// shipped files refuses to open when the files and the list differ, so a
// mistake fails at build or at start, not on the first message that needs it.
//
// What the rules expect of a row: the column names the SQL gives (aliases
// in camelCase, quoted so PostgreSQL keeps their case), integers (counts, ids, epoch
// milliseconds) as JavaScript numbers, flags as 0 or 1, blobs as Buffers.

import type { QueryName } from './query-names.js';

/** Named parameters (`@name` in the SQL) or positional ones, in order. */
export type SqlParams = Readonly<Record<string, unknown>> | readonly unknown[];

export interface SqlRunResult {
  /** Rows inserted, updated or deleted. */
  changes: number;
}

/**
 * What a transaction body (and the engine outside one) can run. `Name` is
 * the store's QueryName; an engine opened on other queries (an engine's own
 * tests) takes theirs.
 */
export interface SqlSession<Name extends string = QueryName> {
  /** Every row of a named query. */
  all<T>(name: Name, params?: SqlParams): Promise<T[]>;
  /** The first row of a named query, or undefined. */
  get<T>(name: Name, params?: SqlParams): Promise<T | undefined>;
  /** A named statement for its effect; use `RETURNING` with `get` when a new id is needed. */
  run(name: Name, params?: SqlParams): Promise<SqlRunResult>;
}

export interface SqlTransaction<Name extends string = QueryName> extends SqlSession<Name> {
  /**
   * Runs `body` inside a savepoint: its writes are undone when it rejects and
   * the transaction goes on (one bad message of a batch does not roll back
   * the others).
   */
  savepoint<T>(body: (sp: SqlTransaction<Name>) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` once the transaction has committed; never when it (or this
   * savepoint) rolls back. For telling the rest of the process about a change
   * it will read back: on PostgreSQL a read on another connection before the
   * commit would not see it.
   */
  afterCommit(fn: () => void): void;
}

/** A migration script: `NNN_name.sql` from the engine's folder of migrations. */
export interface SqlMigration {
  version: number;
  name: string;
  sql: string;
}

/**
 * How a write transaction keeps the store's rules where several writers run
 * at once (PostgreSQL; SQLite has one writer at a time whatever is asked):
 * - 'exclusive' (the default): alone against every other 'exclusive' or keyed
 *   transaction, for rules that read and decide over many rows (a ticket
 *   command, an SLA pass, a quarantine release);
 * - `{ keys }`: beside other keyed transactions, waiting only for one that
 *   names a key it names (a mailbox, a Message-ID, a recipient) and for an
 *   'exclusive' one; the intake of different mailboxes runs in parallel;
 * - 'rows': no named lock at all; the body relies on row locks and unique
 *   keys alone (outbox claims with SKIP LOCKED, sent marks by id).
 */
export type TransactionLock = 'exclusive' | 'rows' | { keys: readonly string[] };

/**
 * What a write transaction's commit waits for before it resolves:
 * - 'disk' (the default): the commit is on disk; a power cut keeps it. What
 *   the intake commits before it moves a mail off the server is always this.
 * - 'engine': the engine has the commit (every connection sees it, and a
 *   killed process keeps it) but it reaches the disk with the next commit
 *   that waits for the disk, or a moment later (PostgreSQL's
 *   `synchronous_commit = off`): a power cut, or a crash of the machine or
 *   of the database server, can lose the last ones. Only for bookkeeping
 *   whose loss repeats work that at-least-once allows (a sent mark sends its
 *   mail again, a lost claim or redaction is done again), never for what
 *   could lose a message. On SQLite an fsync blocks the event loop, so the
 *   outbox's several commits per sent mail took a fifth of the main thread.
 */
export type CommitWait = 'disk' | 'engine';

/** Whether a write could succeed right now (readiness); `code` is the engine's error code. */
export type WriteProbe = { ok: true } | { ok: false; code: string; message: string };

export interface SqlEngine<Name extends string = QueryName> extends SqlSession<Name> {
  readonly kind: 'sqlite' | 'postgres';
  /** The schema version recorded in the database; 0 for a new one. */
  schemaVersion(): Promise<number>;
  /**
   * Runs a migration script and records its version, in one transaction,
   * unless the database already reached that version (another process
   * migrated it meanwhile): false then. The engine holds its lock across the
   * check and the script, so two processes starting at once apply it once.
   */
  applyMigration(m: SqlMigration): Promise<boolean>;
  /**
   * Checks every named query against the schema (prepares it), so a broken
   * query fails at start. Called once the schema is current.
   */
  checkQueries(): Promise<void>;
  /** Whether a write transaction can be opened and the database has room to grow. */
  probeWrite(): Promise<WriteProbe>;
  /**
   * Runs `body` in one transaction that may write: committed when it resolves,
   * rolled back when it rejects. `body` uses only `tx`, never the engine, so
   * an engine with one connection can serialise transactions. `lock` says
   * what the body's rules need to be kept apart from (see TransactionLock),
   * `wait` what its commit waits for (see CommitWait).
   */
  transaction<T>(body: (tx: SqlTransaction<Name>) => Promise<T>, lock?: TransactionLock, wait?: CommitWait): Promise<T>;
  /**
   * Runs `body` in one read-only transaction that sees a single snapshot of
   * the database (a page and its numbering agree), without taking a write lock.
   */
  snapshot<T>(body: (s: SqlSession<Name>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * One transaction, or a savepoint within one, as both engines guard it: its
 * statements run on the connection the transaction holds, and using it after
 * it ended, or while a savepoint of it is open, is a mistake that throws
 * rather than writing outside it. An engine says how statements and
 * savepoint commands run on its connection.
 */
export abstract class GuardedTransaction<Name extends string = QueryName> implements SqlTransaction<Name> {
  /** What afterCommit asked for, a released savepoint's included; the engine runs them once the transaction commits. */
  readonly committed: (() => void)[] = [];
  private open = true;
  /** A savepoint of this level is open: statements must go through it until it ends. */
  private inner = false;

  constructor(private readonly depth: number) {}

  /** The named queries, run on the transaction's connection. */
  protected abstract readonly statements: SqlSession<Name>;
  /** Runs a SAVEPOINT, RELEASE or ROLLBACK TO command on the connection. */
  protected abstract exec(command: string): void | Promise<void>;
  /** A savepoint's transaction, one level deeper, on the same connection. */
  protected abstract nested(depth: number): GuardedTransaction<Name>;

  /**
   * Whether the connection is still in the transaction after a savepoint's
   * body failed; false when the engine has already rolled the whole of it
   * back (some SQLite errors do), and there is no savepoint left to undo.
   */
  protected inTransaction(): boolean {
    return true;
  }

  /** Called by the engine (or the enclosing savepoint) when this one is over. */
  end(): void {
    this.open = false;
  }

  private check(): void {
    if (!this.open) throw new Error('transaction already ended');
    if (this.inner) throw new Error('a savepoint of this transaction is open: use its session');
  }

  all<T>(name: Name, params?: SqlParams): Promise<T[]> {
    this.check();
    return this.statements.all<T>(name, params);
  }

  get<T>(name: Name, params?: SqlParams): Promise<T | undefined> {
    this.check();
    return this.statements.get<T>(name, params);
  }

  run(name: Name, params?: SqlParams): Promise<SqlRunResult> {
    this.check();
    return this.statements.run(name, params);
  }

  afterCommit(fn: () => void): void {
    this.check();
    this.committed.push(fn);
  }

  async savepoint<T>(body: (sp: SqlTransaction<Name>) => Promise<T>): Promise<T> {
    this.check();
    const name = `sp${this.depth + 1}`;
    await this.exec(`SAVEPOINT ${name}`);
    const sp = this.nested(this.depth + 1);
    this.inner = true;
    try {
      const value = await body(sp);
      sp.end();
      await this.exec(`RELEASE SAVEPOINT ${name}`);
      this.committed.push(...sp.committed);
      return value;
    } catch (err) {
      sp.end();
      // A failed statement leaves the savepoint open (and, on PostgreSQL, the
      // transaction aborted) until ROLLBACK TO; RELEASE then ends it.
      if (this.inTransaction()) {
        await this.exec(`ROLLBACK TO SAVEPOINT ${name}`);
        await this.exec(`RELEASE SAVEPOINT ${name}`);
      }
      throw err;
    } finally {
      this.inner = false;
    }
  }
}

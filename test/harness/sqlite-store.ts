// Stores on an SQLite file for tests, and the connection beneath a store or
// runtime for tests that look at the rows themselves.

import type { Database, Statement } from 'better-sqlite3';
import type { Runtime } from '../../src/daemon/runtime.js';
import { loadNamedQueries } from '../../src/store/named-queries.js';
import { openEngine, type OpenOptions } from '../../src/store/open-store.js';
import type { SqlEngine } from '../../src/store/sql-engine.js';
import type { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { SqlStore } from '../../src/store/sql-store.js';
import type { Store, StoreHooks } from '../../src/store/store.js';
import { TicketRecords } from '../../src/store/ticket-records.js';
import { decideThread } from '../../src/thread/decide-thread.js';
import { referencesInSubject } from '../../src/thread/reference.js';
import type { StatusLinks } from '../../src/core/status-links.js';

/**
 * A store as the daemon makes it (the real thread stage), with its
 * connection at hand as `db`, a named query prepared on it as `s(name)`, and
 * the store's own status-token rule as `tokenFor`.
 */
export type SqliteTestStore = SqlStore & {
  readonly db: Database;
  s(name: string): Statement;
  tokenFor(ticketId: number, recipient: string, links: StatusLinks, now: number): Promise<string>;
};

export async function openSqliteStore(path: string, opts: OpenOptions & { hooks?: StoreHooks } = {}): Promise<SqliteTestStore> {
  const engine = await openEngine(path, opts);
  const store = new SqlStore(engine, {
    thread: { decide: decideThread, referencesIn: referencesInSubject },
    hooks: opts.hooks ?? {},
  });
  const db = (engine as SqliteEngine).db;
  const queries = loadNamedQueries('sqlite');
  return Object.assign(store, {
    db,
    s: (name: string) => db.prepare(queries.get(name) ?? `unknown named query ${name}`),
    tokenFor: (ticketId: number, recipient: string, links: StatusLinks, now: number) =>
      engine.transaction((tx) => new TicketRecords(tx).tokenFor(ticketId, recipient, links, now)),
  });
}

/** The SQLite connection beneath a runtime's (or a store's) engine. */
export function dbOf(of: Runtime | Store): Database {
  const store = 'store' in of ? of.store : of;
  return ((store as SqlStore).engine as SqliteEngine).db;
}

/** The engine beneath a runtime's (or a store's) store. */
export function engineOf(of: Runtime | Store): SqlEngine {
  const store = 'store' in of ? of.store : of;
  return (store as SqlStore).engine;
}

/** The store's records of single tickets (events, tokens, queued mail) over a runtime's engine, for tests that set a scene. */
export function recordsOf(of: Runtime | Store): TicketRecords {
  return new TicketRecords(engineOf(of));
}

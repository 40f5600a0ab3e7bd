// What `ticketd doctor` reads of a database to say whether ticketd runs
// well on it: how much it holds, which nodes are alive, when each mailbox was
// last read. Reads only, over the engine, so each engine runs the same named
// queries as the rest of the store.

import type { SqlSession } from './sql-engine.js';
import { SqliteEngine } from './sqlite-engine.js';

/** What a running ticketd recorded about reading a mailbox (table mailbox_reads). */
export interface MailboxRead {
  watchedSince: number | null;
  readAt: number | null;
}

export class HealthReads {
  constructor(private readonly db: SqlSession) {}

  async ticketCount(): Promise<number> {
    return (await this.db.get<{ n: number }>('count-tickets'))?.n ?? 0;
  }

  /** Nodes whose heartbeat has not run out at `now` (schema version 10 and later). */
  async liveNodeCount(now: number): Promise<number> {
    return (await this.db.all('nodes-live', { now })).length;
  }

  /** Each mailbox's reads, by mailbox name (schema version 6 and later). */
  async mailboxReads(): Promise<Map<string, MailboxRead>> {
    const rows = await this.db.all<MailboxRead & { mailbox: string }>('mailbox-reads');
    return new Map(rows.map(({ mailbox, ...read }) => [mailbox, read]));
  }
}

/**
 * Runs `read` over a SQLite database opened read-only, so nothing on disk
 * changes (`ticketd doctor`, `ticketd backup` checking its copy); `read` is
 * also given the schema version, as a table it needs may be younger.
 */
export async function readSqliteHealth<T>(path: string, read: (h: HealthReads, schemaVersion: number) => Promise<T>): Promise<T> {
  const engine = new SqliteEngine(path, { readOnly: true });
  try {
    return await read(new HealthReads(engine), await engine.schemaVersion());
  } finally {
    await engine.close();
  }
}

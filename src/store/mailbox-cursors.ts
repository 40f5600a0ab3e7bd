// Per mailbox, what the IMAP worker keeps: the UID cursor, a receipt per UID
// taken (so a message is taken once however often it is seen), which of them
// still owe a move or flag on the server, and when the folder was last read.

import type { SqlEngine } from './sql-engine.js';
import type { ImapCursor, MailboxCursors, UnsettledReceipt } from './store.js';

export class SqlMailboxCursors implements MailboxCursors {
  constructor(private readonly engine: SqlEngine) {}

  async getCursor(mailbox: string): Promise<ImapCursor | null> {
    return (await this.engine.get<ImapCursor>('get-cursor', [mailbox])) ?? null;
  }

  async resetCursor(mailbox: string, uidValidity: number, at: number): Promise<void> {
    await this.engine.run('upsert-cursor', { mailbox, uidValidity, lastUid: 0, now: at });
  }

  async markWatched(mailbox: string, since: number | null): Promise<void> {
    await this.engine.run('mark-watched', [mailbox, since]);
  }

  async markRead(mailbox: string, at: number): Promise<void> {
    await this.engine.run('mark-read', [mailbox, at]);
  }

  unsettledReceipts(mailbox: string, uidValidity: number): Promise<UnsettledReceipt[]> {
    return this.engine.all<UnsettledReceipt>('unsettled-receipts', [mailbox, uidValidity]);
  }

  async knownUids(mailbox: string, uidValidity: number, uids: number[]): Promise<Set<number>> {
    const known = new Set<number>();
    for (const uid of uids)
      if ((await this.engine.get('receipt-exists', [mailbox, uidValidity, uid])) !== undefined) known.add(uid);
    return known;
  }

  /**
   * After every batch of every mailbox: keyed on the mailbox like its intake
   * (see TransactionLock) rather than exclusive, which paused every node's
   * intake each time; on the main pool, so twenty mailboxes settling do not
   * crowd the connections kept for sent marks and heartbeats.
   */
  markSettled(mailbox: string, uidValidity: number, uids: number[], at: number): Promise<void> {
    return this.engine.transaction(
      async (tx) => {
        for (const uid of uids) await tx.run('settle-receipt', [at, mailbox, uidValidity, uid]);
      },
      { keys: [`mailbox:${mailbox}`] },
    );
  }
}

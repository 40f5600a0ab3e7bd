// What the outbox worker needs of storage: claimed rows to send and the
// bookkeeping of each attempt. Owned here, by its caller; the store
// implements it (store/store.ts's OutboxQueue extends it).

import type { OutboundDraft } from '../core/types.js';

/** A claimed outbox row: leased to this worker until it is sent, retried or given back. */
export interface OutboxJob {
  id: number;
  messageRow: number;
  mailbox: string;
  kind: string;
  envelopeFrom: string;
  envelopeTo: string[];
  attempts: number;
  raw: Buffer | null;
  draft: OutboundDraft;
}

export interface OutboxClaims {
  /**
   * Leases up to `limit` due rows: up to `fresh` of them the newest never
   * tried, the rest the oldest due (first attempts and retries alike).
   * `claimant` names the node's incarnation: its claim then lasts only as
   * long as the node's heartbeat, and a row claimed by a dead node is due
   * at once (see daemon/mailbox-leases.ts).
   */
  claimOutbox(now: number, limit: number, leaseMs: number, fresh?: number, claimant?: string | null): Promise<OutboxJob[]>;
  /** Keeps composed messages, several in one commit, so every retry sends the same bytes. */
  saveOutboundRaw(items: { messageRow: number; raw: Buffer }[], now: number): Promise<void>;
  /** Marks rows the server accepted, several in one commit; their status links are then due for redactSentMail. */
  markOutboxSent(ids: number[], now: number): Promise<void>;
  /**
   * Takes the status links out of the stored copies of up to `limit` sent
   * mails (a copy of the database must not hold a working link); returns how
   * many it did, so a caller goes on while it returns `limit`.
   */
  redactSentMail(limit: number): Promise<number>;
  /** Gives claimed rows back unsent before their lease ends (a clean stop). */
  releaseOutbox(ids: number[], now: number): Promise<void>;
  markOutboxRetry(id: number, nextAttemptAt: number, error: string): Promise<void>;
  markOutboxFailed(id: number, error: string, now: number): Promise<void>;
}

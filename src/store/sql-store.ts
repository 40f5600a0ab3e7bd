// The Store as one object: the store's parts, each written once over
// SqlEngine, composed over one engine. Which engine is the caller's choice
// (open-store.ts); nothing here knows it.

import type { TicketStatus } from '../core/types.js';
import type { StatusLinks } from '../core/status-links.js';
import { Intake } from './intake.js';
import { SqlMailboxCursors } from './mailbox-cursors.js';
import { SqlOutboxQueue } from './outbox-queue.js';
import { SqlQuarantineStore } from './quarantine-store.js';
import type { SqlEngine } from './sql-engine.js';
import type {
  AnswerUse,
  AssignmentChange,
  ComposeToRequester,
  HandoffNoticeRequest,
  HandoffRecord,
  ImapCursor,
  IntakeItem,
  IntakePolicy,
  IntakeResult,
  OutboxCounts,
  OutboxEntry,
  QuarantineEntry,
  Store,
  StoreHooks,
  ThreadStage,
  TicketDetail,
  TicketRow,
  TicketSummary,
  UnsettledReceipt,
} from './store.js';
import type { OutboundDraft } from '../core/types.js';
import type { OutboxJob } from '../outbox/outbox-claims.js';
import { SqlTicketCommands } from './ticket-commands.js';

export interface StoreParts {
  /** The thread stage's pure functions, which the intake transaction runs. */
  thread: ThreadStage;
  hooks?: StoreHooks;
}

export class SqlStore implements Store {
  private readonly intake: Intake;
  private readonly cursors: SqlMailboxCursors;
  private readonly outbox: SqlOutboxQueue;
  private readonly tickets: SqlTicketCommands;
  private readonly quarantine: SqlQuarantineStore;

  constructor(
    readonly engine: SqlEngine,
    parts: StoreParts,
  ) {
    const hooks = parts.hooks ?? {};
    this.intake = new Intake(engine, parts.thread, hooks);
    this.cursors = new SqlMailboxCursors(engine);
    this.outbox = new SqlOutboxQueue(engine);
    this.tickets = new SqlTicketCommands(engine, hooks);
    this.quarantine = new SqlQuarantineStore(engine);
  }

  takeBatch(items: IntakeItem[], policy: IntakePolicy): Promise<IntakeResult[]> {
    return this.intake.takeBatch(items, policy);
  }

  getCursor(mailbox: string): Promise<ImapCursor | null> {
    return this.cursors.getCursor(mailbox);
  }
  unsettledReceipts(mailbox: string, uidValidity: number): Promise<UnsettledReceipt[]> {
    return this.cursors.unsettledReceipts(mailbox, uidValidity);
  }
  knownUids(mailbox: string, uidValidity: number, uids: number[]): Promise<Set<number>> {
    return this.cursors.knownUids(mailbox, uidValidity, uids);
  }
  markSettled(mailbox: string, uidValidity: number, uids: number[], at: number): Promise<void> {
    return this.cursors.markSettled(mailbox, uidValidity, uids, at);
  }
  resetCursor(mailbox: string, uidValidity: number, at: number): Promise<void> {
    return this.cursors.resetCursor(mailbox, uidValidity, at);
  }
  markWatched(mailbox: string, since: number | null): Promise<void> {
    return this.cursors.markWatched(mailbox, since);
  }
  markRead(mailbox: string, at: number): Promise<void> {
    return this.cursors.markRead(mailbox, at);
  }

  claimOutbox(now: number, limit: number, leaseMs: number, fresh?: number, claimant?: string | null): Promise<OutboxJob[]> {
    return this.outbox.claimOutbox(now, limit, leaseMs, fresh, claimant);
  }
  saveOutboundRaw(items: { messageRow: number; raw: Buffer }[], now: number): Promise<void> {
    return this.outbox.saveOutboundRaw(items, now);
  }
  markOutboxSent(ids: number[], now: number): Promise<void> {
    return this.outbox.markOutboxSent(ids, now);
  }
  redactSentMail(limit: number): Promise<number> {
    return this.outbox.redactSentMail(limit);
  }
  releaseOutbox(ids: number[], now: number): Promise<void> {
    return this.outbox.releaseOutbox(ids, now);
  }
  markOutboxRetry(id: number, nextAttemptAt: number, error: string): Promise<void> {
    return this.outbox.markOutboxRetry(id, nextAttemptAt, error);
  }
  markOutboxFailed(id: number, error: string, now: number): Promise<void> {
    return this.outbox.markOutboxFailed(id, error, now);
  }
  outboxCounts(): Promise<OutboxCounts> {
    return this.outbox.outboxCounts();
  }
  listOutbox(filter?: { failedOnly?: boolean; id?: number }): Promise<OutboxEntry[]> {
    return this.outbox.listOutbox(filter);
  }
  requeueOutbox(which: { id: number } | 'failed', now: number): Promise<number[]> {
    return this.outbox.requeueOutbox(which, now);
  }

  listTickets(filter?: { status?: TicketStatus; mailbox?: string; queue?: string }): Promise<TicketSummary[]> {
    return this.tickets.listTickets(filter);
  }
  ticketByRef(ref: string): Promise<TicketRow | null> {
    return this.tickets.ticketByRef(ref);
  }
  ticketDetail(ref: string): Promise<TicketDetail | null> {
    return this.tickets.ticketDetail(ref);
  }
  queuePosition(t: TicketRow): Promise<number> {
    return this.tickets.queuePosition(t);
  }
  activeStatusToken(ticketId: number, recipient: string, links: StatusLinks): Promise<string | null> {
    return this.tickets.activeStatusToken(ticketId, recipient, links);
  }
  addAgentReply(
    ref: string,
    compose: ComposeToRequester,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
    answers?: readonly AnswerUse[],
    by?: string | null,
  ): Promise<TicketRow> {
    return this.tickets.addAgentReply(ref, compose, policy, now, answers, by);
  }
  setStatus(ref: string, status: TicketStatus, opts: { reason?: string | null; now: number }): Promise<TicketRow> {
    return this.tickets.setStatus(ref, status, opts);
  }
  resolveWithNotice(
    ref: string,
    compose: ComposeToRequester,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
  ): Promise<TicketRow> {
    return this.tickets.resolveWithNotice(ref, compose, policy, now);
  }
  handoff(ref: string, team: string, note: string | null, now: number): Promise<TicketRow> {
    return this.tickets.handoff(ref, team, note, now);
  }

  addNote(ref: string, text: string, by: string, now: number): Promise<TicketRow> {
    return this.tickets.addNote(ref, text, by, now);
  }

  assign(
    ref: string,
    change: AssignmentChange,
    opts: { note: string | null; by: string | null; now: number; handoff?: boolean },
    notify?: (req: HandoffNoticeRequest) => Promise<OutboundDraft[]>,
  ): Promise<{ ticket: TicketRow; handoff: HandoffRecord | null; notices: number }> {
    return this.tickets.assign(ref, change, opts, notify);
  }

  listQuarantine(opts?: { includeReleased?: boolean }): Promise<QuarantineEntry[]> {
    return this.quarantine.listQuarantine(opts);
  }
  quarantineRaw(id: number): Promise<{ entry: QuarantineEntry; raw: Buffer } | null> {
    return this.quarantine.quarantineRaw(id);
  }
  markQuarantineReleased(id: number, outcome: string, now: number): Promise<void> {
    return this.quarantine.markQuarantineReleased(id, outcome, now);
  }

  discardQuarantine(id: number, now: number): Promise<{ entry: QuarantineEntry; bytesRemoved: boolean } | null> {
    return this.quarantine.discardQuarantine(id, now);
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

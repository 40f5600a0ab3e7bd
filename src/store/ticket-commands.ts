// What staff do to tickets from the command line (reply, status, handoff)
// and what they read of them (list, detail); each change in one transaction
// with its events and the SLA hook.

import type { Address, TicketStatus } from '../core/types.js';
import type { StatusLinks } from '../core/status-links.js';
import type { SqlEngine, SqlSession, SqlTransaction } from './sql-engine.js';
import type {
  AnswerUse,
  AssignmentChange,
  ComposeToRequester,
  HandoffNoticeRequest,
  HandoffRecord,
  IntakePolicy,
  MessageSummary,
  StoreHooks,
  TicketAutoReply,
  TicketCommands,
  TicketDetail,
  TicketRow,
  TicketSummary,
} from './store.js';
import { AssignmentUnchangedError, HandoffNoteRequiredError, StatusUnchangedError } from './ticket-errors.js';
import type { OutboundDraft } from '../core/types.js';
import { ratingOf } from './ratings.js';
import { TicketRecords } from './ticket-records.js';

export class SqlTicketCommands implements TicketCommands {
  private readonly records: TicketRecords;

  constructor(
    private readonly engine: SqlEngine,
    private readonly hooks: StoreHooks,
  ) {
    this.records = new TicketRecords(engine);
  }

  async listTickets(filter: { status?: TicketStatus; mailbox?: string; queue?: string } = {}): Promise<TicketSummary[]> {
    const rows = await this.engine.all<RawSummary>('list-tickets', {
      status: filter.status ?? null,
      mailbox: filter.mailbox ?? null,
      queue: filter.queue ?? null,
      id: null,
    });
    return rows.map(toSummary);
  }

  ticketByRef(ref: string): Promise<TicketRow | null> {
    return this.records.ticketByRef(ref);
  }

  queuePosition(t: TicketRow): Promise<number> {
    return this.records.queuePosition(t);
  }

  activeStatusToken(ticketId: number, recipient: string, links: StatusLinks): Promise<string | null> {
    return this.records.activeToken(ticketId, recipient, links);
  }

  async ticketDetail(ref: string): Promise<TicketDetail | null> {
    const t = await this.records.ticketByRef(ref);
    return t ? detailOf(this.engine, t) : null;
  }

  addAgentReply(
    ref: string,
    compose: ComposeToRequester,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
    answers: readonly AnswerUse[] = [],
    by: string | null = null,
  ): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      await queueToRequester(records, t, compose, policy, now);
      await tx.run('mark-first-response', { id: t.id, now });
      await records.event(t.id, 'reply', true, by === null ? {} : { by }, now);
      for (const use of answers) await records.answerUsed(t.id, use, now);
      await this.hooks.afterTicketChange?.(tx, t.id, 'agent-reply', now);
      return (await records.ticketRow(t.id))!;
    });
  }

  setStatus(ref: string, status: TicketStatus, opts: { reason?: string | null; now: number }): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      await changeStatus(tx, this.hooks, t, status, opts.reason, opts.now);
      return (await records.ticketRow(t.id))!;
    });
  }

  resolveWithNotice(
    ref: string,
    compose: ComposeToRequester,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
  ): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      await changeStatus(tx, this.hooks, t, 'resolved', undefined, now);
      await queueToRequester(records, (await records.ticketRow(t.id))!, compose, policy, now);
      return (await records.ticketRow(t.id))!;
    });
  }

  async handoff(ref: string, team: string, note: string | null, now: number): Promise<TicketRow> {
    return (await this.assign(ref, { queue: team }, { note, by: null, now, handoff: true })).ticket;
  }

  addNote(ref: string, text: string, by: string, now: number): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      await records.event(t.id, 'note', false, { text, by }, now);
      await tx.run('touch-ticket', [now, t.id]);
      return (await records.ticketRow(t.id))!;
    });
  }

  assign(
    ref: string,
    change: AssignmentChange,
    opts: { note: string | null; by: string | null; now: number; handoff?: boolean },
    notify?: (req: HandoffNoticeRequest) => Promise<OutboundDraft[]>,
  ): Promise<{ ticket: TicketRow; handoff: HandoffRecord | null; notices: number }> {
    return this.engine.transaction(async (tx) => {
      const t = await new TicketRecords(tx).mustByRef(ref);
      return reassign(tx, this.hooks, t, change, opts, notify);
    });
  }
}

/**
 * Queues the mail `compose` makes for the ticket's requester inside the
 * caller's transaction: with their status link (issued on first use), as an
 * answer to the last message of their conversation.
 */
export async function queueToRequester(
  records: TicketRecords,
  t: TicketRow,
  compose: ComposeToRequester,
  policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
  now: number,
): Promise<void> {
  const ids = await records.threadIds(t.id);
  const statusUrl = policy.statusUrl(await records.tokenFor(t.id, t.replyTo, policy.links, now));
  await records.queueOutbound(t.id, t.mailbox, compose(t, statusUrl, { inReplyTo: ids.at(-1) ?? null, references: ids }), now);
}

/**
 * Changes a ticket's status inside `tx`. On hold without a reason given
 * keeps the reason the customer was told; the same status again is refused
 * (StatusUnchangedError) unless it brings a new on-hold reason.
 */
export async function changeStatus(
  tx: SqlTransaction,
  hooks: StoreHooks,
  t: TicketRow,
  status: TicketStatus,
  given: string | null | undefined,
  now: number,
): Promise<void> {
  const records = new TicketRecords(tx);
  const reason = status !== 'on-hold' ? null : given === undefined && t.status === 'on-hold' ? t.onHoldReason : (given ?? null);
  if (status === t.status && (status !== 'on-hold' || reason === t.onHoldReason))
    throw new StatusUnchangedError(t.ref, status, t.onHoldReason);
  await tx.run('update-ticket-status', { id: t.id, status, reason, now });
  await records.event(t.id, 'status', true, { status, ...(reason ? { reason } : {}) }, now);
  await hooks.afterTicketChange?.(tx, t.id, 'status', now);
}

/** Moves a ticket to another queue and/or owner inside `tx`; see TicketCommands.assign. */
export async function reassign(
  tx: SqlTransaction,
  hooks: StoreHooks,
  t: TicketRow,
  change: AssignmentChange,
  opts: { note: string | null; by: string | null; now: number; handoff?: boolean },
  notify?: (req: HandoffNoticeRequest) => Promise<OutboundDraft[]>,
): Promise<{ ticket: TicketRow; handoff: HandoffRecord | null; notices: number }> {
  const now = opts.now;
  const records = new TicketRecords(tx);
  const fromQueue = t.queue ?? null;
  const fromOwner = t.owner ?? null;
  const toQueue = change.queue ?? fromQueue;
  const queueMoves = change.queue !== undefined && change.queue.toLowerCase() !== (fromQueue ?? '').toLowerCase();
  // A new queue starts without an owner unless one is named.
  const toOwner = change.owner !== undefined ? change.owner : queueMoves ? null : fromOwner;
  const ownerMoves = (toOwner ?? '') !== (fromOwner ?? '');
  if (!queueMoves && !ownerMoves) throw new AssignmentUnchangedError(t.ref, fromQueue, fromOwner);
  // Taking (or giving back) a ticket within its queue is not a handoff: nobody else has to pick up the story.
  const isHandoff = opts.handoff === true || queueMoves || (fromOwner !== null && toOwner !== null);
  if (isHandoff && !opts.note) throw new HandoffNoteRequiredError(t.ref);
  await tx.run('set-ticket-assignment', { id: t.id, queue: toQueue, owner: toOwner, now });
  if (!isHandoff) {
    await records.event(t.id, 'assigned', false, { owner: toOwner, by: opts.by, ...(opts.note ? { text: opts.note } : {}) }, now);
    return { ticket: (await records.ticketRow(t.id))!, handoff: null, notices: 0 };
  }
  const handoff: HandoffRecord = { fromQueue, toQueue, fromOwner, toOwner, by: opts.by, note: opts.note!, at: now };
  await tx.run('insert-handoff', { ticketId: t.id, ...handoff, now });
  // The customer sees which team has the case, never who or why.
  if (queueMoves && toQueue !== null) await records.event(t.id, 'handoff', true, { team: toQueue }, now);
  // The note is an internal note like any other, marked as the handoff's.
  await records.event(
    t.id,
    'note',
    false,
    { text: opts.note, by: opts.by, handoff: { from: fromOwner ?? fromQueue, to: toOwner ?? toQueue } },
    now,
  );
  // The new queue's SLA policy takes over; the time the customer waited so far still counts.
  if (queueMoves) await hooks.afterTicketChange?.(tx, t.id, 'handoff', now);
  const ticket = (await records.ticketRow(t.id))!;
  let notices = 0;
  if (notify) {
    const drafts = await notify({
      ticket,
      handoff,
      detail: await detailOf(tx, ticket),
      staffThread: await records.staffThreadIds(t.id),
      statusToken: (recipient, links) => records.tokenFor(t.id, recipient, links, now),
    });
    for (const draft of drafts) {
      await records.queueOutbound(t.id, t.mailbox, draft, now);
      notices++;
    }
  }
  return { ticket, handoff, notices };
}

/** The ticket with its messages, events, handoffs and rating, read in `db` (the engine, or the transaction that is changing it). */
async function detailOf(db: SqlSession, t: TicketRow): Promise<TicketDetail> {
  const summary = (await db.get<RawSummary>('list-tickets', { status: null, mailbox: null, queue: null, id: t.id }))!;
  const messages = (await db.all<RawMessage>('ticket-messages', [t.id])).map(
    (m): MessageSummary => ({
      id: m.id,
      direction: m.direction,
      kind: m.kind,
      from: m.from,
      to: (JSON.parse(m.to) as (string | Address)[]).map((a) => (typeof a === 'string' ? a : a.address)),
      subject: m.subject,
      messageId: m.messageId,
      date: new Date(m.date).toISOString(),
      text: m.text,
      public: m.public === 1,
    }),
  );
  const events = (await db.all<{ type: string; public: number; detail: string; at: number }>('ticket-events', [t.id])).map(
    (e) => ({
      type: e.type,
      public: e.public === 1,
      detail: JSON.parse(e.detail) as Record<string, unknown>,
      at: e.at,
    }),
  );
  const autoReply = (await db.get<TicketAutoReply>('ticket-auto-reply', [t.id]))!;
  const handoffs = await db.all<HandoffRecord>('ticket-handoffs', { ticketId: t.id });
  const rating = await ratingOf(db, t.id);
  return {
    ...toSummary(summary),
    owner: t.owner ?? null,
    priority: t.priority,
    ...autoReply,
    tags: t.tags ?? [],
    messages,
    events,
    handoffs,
    rating,
  };
}

/** A `list-tickets` row: the summary with the time still in epoch milliseconds. */
type RawSummary = Omit<TicketSummary, 'createdAt'> & { createdAt: number };

function toSummary(r: RawSummary): TicketSummary {
  return { ...r, createdAt: new Date(r.createdAt).toISOString() };
}

interface RawMessage {
  id: number;
  direction: 'in' | 'out';
  kind: string;
  from: string;
  to: string;
  subject: string;
  messageId: string;
  date: number;
  text: string;
  public: number;
}

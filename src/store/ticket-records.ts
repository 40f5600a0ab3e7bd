// Reads and writes of one ticket that every part of the store shares
// (intake, staff commands, the SLA engine's notices, the status page), over
// whatever session they run in: the engine, a transaction or a savepoint.

import { StatusLinks } from '../core/status-links.js';
import type { SqlSession } from './sql-engine.js';
import type { AnswerUse, TicketRow } from './store.js';
import type { OutboundDraft } from '../core/types.js';

export const TICKET_NOT_FOUND = 'TICKETD_TICKET_NOT_FOUND';

/** Mail to staff about a ticket: kept with it, never part of the customer's conversation or its threading. */
export const STAFF_MAIL_KINDS: ReadonlySet<string> = new Set(['staff-warning', 'handoff-notice', 'new-ticket-notice']);

export class TicketNotFoundError extends Error {
  readonly code = TICKET_NOT_FOUND;
  constructor(ref: string) {
    super(`no ticket with reference ${ref}`);
  }
}

export class TicketRecords {
  constructor(private readonly db: SqlSession) {}

  async ticketRow(id: number): Promise<TicketRow | null> {
    const row = await this.db.get<Omit<TicketRow, 'tags'> & { tags: string }>('ticket-by-id', [id]);
    return row ? { ...row, tags: JSON.parse(row.tags) as string[] } : null;
  }

  async ticketIdByRef(ref: string): Promise<number | null> {
    return (await this.db.get<{ id: number }>('ticket-id-by-ref', [ref]))?.id ?? null;
  }

  async ticketByRef(ref: string): Promise<TicketRow | null> {
    const id = await this.ticketIdByRef(ref);
    return id === null ? null : this.ticketRow(id);
  }

  /** The ticket, or TicketNotFoundError: for commands that name one. */
  async mustByRef(ref: string): Promise<TicketRow> {
    const t = await this.ticketByRef(ref);
    if (!t) throw new TicketNotFoundError(ref);
    return t;
  }

  async refOf(id: number | null): Promise<string | null> {
    return id === null ? null : ((await this.ticketRow(id))?.ref ?? null);
  }

  async event(ticketId: number, type: string, isPublic: boolean, detail: Record<string, unknown>, now: number): Promise<void> {
    await this.db.run('insert-event', [ticketId, type, isPublic ? 1 : 0, JSON.stringify(detail), now]);
  }

  /** One use of a vetted answer, as the internal `answer_used` event the report counts (detail: name, lang, by, via). */
  async answerUsed(ticketId: number, use: AnswerUse, now: number): Promise<void> {
    await this.event(ticketId, 'answer_used', false, { name: use.name, lang: use.lang, by: use.by, via: use.via }, now);
  }

  /** Open requests of the same mailbox ahead of this ticket: the acknowledgement, the page and the delay notice all use this. */
  async queuePosition(t: TicketRow): Promise<number> {
    return (await this.db.get<{ n: number }>('queue-position', { mailbox: t.mailbox, createdAt: t.createdAt, id: t.id }))!.n;
  }

  /** Message-IDs of the ticket's public conversation, oldest first, for In-Reply-To and References. */
  async threadIds(ticketId: number): Promise<string[]> {
    return (await this.db.all<{ messageId: string }>('thread-message-ids', [ticketId])).map((r) => r.messageId).reverse();
  }

  /** Message-IDs of the staff mail about a ticket, oldest first: the thread staff notices continue. */
  async staffThreadIds(ticketId: number): Promise<string[]> {
    return (await this.db.all<{ messageId: string }>('staff-thread-message-ids', { ticketId })).map((r) => r.messageId);
  }

  /** The recipient's status-page token for a ticket, issued on first use. */
  async tokenFor(ticketId: number, recipient: string, links: StatusLinks, now: number): Promise<string> {
    const active = await this.activeToken(ticketId, recipient, links);
    if (active !== null) return active;
    const nonce = links.newNonce();
    const token = links.token(nonce);
    await this.db.run('insert-token', [ticketId, recipient, nonce, StatusLinks.hash(token), now]);
    return token;
  }

  /** The recipient's active token, or null: nothing is issued. */
  async activeToken(ticketId: number, recipient: string, links: StatusLinks): Promise<string | null> {
    const active = await this.db.get<{ nonce: string }>('active-token', [ticketId, recipient]);
    return active ? links.token(active.nonce) : null;
  }

  /** Queues a mail: its message row and outbox row. Call inside the transaction that caused it. */
  async queueOutbound(ticketId: number, mailbox: string, draft: OutboundDraft, now: number): Promise<number> {
    const row = await this.insertMessage({
      ticketId,
      mailbox,
      direction: 'out',
      kind: draft.kind,
      messageId: draft.messageId,
      from: draft.from.address,
      rcpt: draft.to[0]?.address ?? null,
      to: JSON.stringify(draft.to),
      cc: '[]',
      subject: draft.subject,
      text: draft.text,
      html: draft.html,
      headers: JSON.stringify({
        ...draft.headers,
        inReplyTo: draft.inReplyTo,
        references: draft.references,
        fromName: draft.from.name,
      }),
      attachments: '[]',
      rawSha256: null,
      sentDate: null,
      now,
      public: STAFF_MAIL_KINDS.has(draft.kind) ? 0 : 1,
    });
    await this.db.run('insert-outbox', [
      row,
      mailbox,
      draft.from.address,
      JSON.stringify(draft.to.map((a) => a.address)),
      now,
      now,
    ]);
    return row;
  }

  /** A message row (`insert-message`'s parameters); its id. */
  async insertMessage(params: Record<string, unknown>): Promise<number> {
    return (await this.db.get<{ id: number }>('insert-message', params))!.id;
  }
}

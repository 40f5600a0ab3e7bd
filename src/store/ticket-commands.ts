// What staff do to tickets from the command line (reply, status, handoff)
// and what they read of them (list, detail); each change in one transaction
// with its events and the SLA hook.

import type { Address, TicketStatus } from '../core/types.js';
import type { StatusLinks } from '../web/status-links.js';
import type { SqlEngine } from './sql-engine.js';
import type {
  IntakePolicy,
  MessageSummary,
  OutboundDraft,
  StoreHooks,
  TicketAutoReply,
  TicketCommands,
  TicketDetail,
  TicketRow,
  TicketSummary,
} from './store.js';
import { TicketRecords } from './ticket-records.js';

export class SqlTicketCommands implements TicketCommands {
  private readonly records: TicketRecords;

  constructor(
    private readonly engine: SqlEngine,
    private readonly hooks: StoreHooks,
  ) {
    this.records = new TicketRecords(engine);
  }

  async listTickets(filter: { status?: TicketStatus; mailbox?: string } = {}): Promise<TicketSummary[]> {
    const rows = await this.engine.all<RawSummary>('list-tickets', { status: filter.status ?? null, mailbox: filter.mailbox ?? null, id: null });
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
    if (!t) return null;
    const summary = (await this.engine.get<RawSummary>('list-tickets', { status: null, mailbox: null, id: t.id }))!;
    const messages = (await this.engine.all<RawMessage>('ticket-messages', [t.id])).map(
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
    const events = (await this.engine.all<{ type: string; public: number; detail: string; at: number }>('ticket-events', [t.id])).map((e) => ({
      type: e.type,
      public: e.public === 1,
      detail: JSON.parse(e.detail) as Record<string, unknown>,
      at: e.at,
    }));
    const autoReply = (await this.engine.get<TicketAutoReply>('ticket-auto-reply', [t.id]))!;
    return { ...toSummary(summary), ...autoReply, messages, events };
  }

  addAgentReply(
    ref: string,
    compose: (ticket: TicketRow, statusUrl: string, thread: { inReplyTo: string | null; references: string[] }) => OutboundDraft,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
  ): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      const ids = await records.threadIds(t.id);
      const statusUrl = policy.statusUrl(await records.tokenFor(t.id, t.replyTo, policy.links, now));
      const draft = compose(t, statusUrl, { inReplyTo: ids.at(-1) ?? null, references: ids });
      await records.queueOutbound(t.id, t.mailbox, draft, now);
      await tx.run('mark-first-response', { id: t.id, now });
      await records.event(t.id, 'reply', true, {}, now);
      await this.hooks.afterTicketChange?.(tx, t.id, 'agent-reply', now);
      return (await records.ticketRow(t.id))!;
    });
  }

  setStatus(ref: string, status: TicketStatus, opts: { reason?: string | null; now: number }): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      await tx.run('update-ticket-status', { id: t.id, status, reason: opts.reason ?? null, now: opts.now });
      await records.event(t.id, 'status', true, { status, ...(status === 'on-hold' && opts.reason ? { reason: opts.reason } : {}) }, opts.now);
      await this.hooks.afterTicketChange?.(tx, t.id, 'status', opts.now);
      return (await records.ticketRow(t.id))!;
    });
  }

  handoff(ref: string, team: string, note: string | null, now: number): Promise<TicketRow> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const t = await records.mustByRef(ref);
      await tx.run('set-ticket-team', [team, now, t.id]);
      await records.event(t.id, 'handoff', true, { team }, now);
      if (note) await records.event(t.id, 'note', false, { team, text: note }, now);
      return (await records.ticketRow(t.id))!;
    });
  }
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

// The status page's storage over SqlEngine: the link lookup, one ticket's
// public history read in one snapshot, link revocation, and the readiness
// probe, the rating form's write. Queries are in status-page.sql.

import type { AttachmentRecord } from '../core/types.js';
import type { SqlEngine, WriteProbe } from '../store/sql-engine.js';
import type { TicketRating, TicketRow } from '../store/store.js';
import { ratingOf, rateTicket, type RateOutcome } from '../store/ratings.js';
import { TicketRecords } from '../store/ticket-records.js';

export type { WriteProbe } from '../store/sql-engine.js';

/** A status link as stored: only the SHA-256 of the token is kept. */
export interface StatusLinkRow {
  ticketId: number;
  tokenHash: string;
  revokedAt: number | null;
  /** When the ticket was closed; links expire a configured time after. */
  closedAt: number | null;
}

export interface PublicMessage {
  id: number;
  direction: 'in' | 'out';
  kind: string;
  from: string;
  text: string;
  attachmentNames: string[];
  at: number;
  /** True when `text` is only the beginning of the stored body. */
  truncated?: boolean;
}

/** One entry of a ticket's public history before its content is read: enough to order and page it. */
export interface TimelineHead {
  source: 'message' | 'event';
  id: number;
  /** The event type; 'message' for messages. */
  type: string;
  at: number;
}

export interface PublicEvent {
  id: number;
  type: string;
  detail: Record<string, unknown>;
  at: number;
}

/** Everything the status page shows of one ticket, read in one snapshot. */
export interface StatusPageData {
  ticket: TicketRow;
  messages: PublicMessage[];
  events: PublicEvent[];
  queuePosition: number;
  /** The requester's rating, shown back on the form; null or absent when none was given. */
  rating?: TicketRating | null;
}

interface RawMessage {
  id: number;
  direction: 'in' | 'out';
  kind: string;
  from: string;
  text: string;
  truncated: number;
  attachments: string;
  at: number;
}

interface RawEvent {
  id: number;
  type: string;
  detail: string;
  at: number;
}

/** What the status page, its readiness check and `ticketd status-link` read and change. */
export interface StatusPageStorage {
  linkByHash(hash: string): Promise<StatusLinkRow | null>;
  pageData(
    ticketId: number,
    pick: (heads: TimelineHead[]) => TimelineHead[],
    maxTextChars: number,
  ): Promise<StatusPageData | null>;
  revokeLinks(ref: string, now: number): Promise<{ ticket: TicketRow; revoked: number } | null>;
  /** Stores the requester's rating of a resolved ticket, replacing an earlier one (store/ratings.ts). */
  rate(ticketId: number, rating: { score: number; comment: string }, now: number): Promise<RateOutcome>;
  probeWrite(): Promise<WriteProbe>;
}

export class StatusPageStore implements StatusPageStorage {
  constructor(private readonly engine: SqlEngine) {}

  async linkByHash(hash: string): Promise<StatusLinkRow | null> {
    return (await this.engine.get<StatusLinkRow>('status-link-by-hash', [hash])) ?? null;
  }

  /**
   * Public messages and events only; internal notes, bounces and link events
   * never leave here. `pick` chooses, from the heads of the whole history,
   * the entries to show; only theirs are read, each message text up to
   * `maxTextChars`. One snapshot, so the page and its numbering agree.
   */
  pageData(
    ticketId: number,
    pick: (heads: TimelineHead[]) => TimelineHead[],
    maxTextChars: number,
  ): Promise<StatusPageData | null> {
    return this.engine.snapshot(async (db) => {
      const records = new TicketRecords(db);
      const ticket = await records.ticketRow(ticketId);
      if (!ticket) return null;
      const heads: TimelineHead[] = [
        ...(await db.all<{ id: number; at: number }>('status-page-message-heads', [ticketId])).map(
          (m): TimelineHead => ({ source: 'message', id: m.id, type: 'message', at: m.at }),
        ),
        ...(await db.all<{ id: number; type: string; at: number }>('status-page-event-heads', [ticketId])).map(
          (e): TimelineHead => ({ source: 'event', id: e.id, type: e.type, at: e.at }),
        ),
      ];
      const picked = pick(heads);
      const ids = (source: TimelineHead['source']) => JSON.stringify(picked.filter((h) => h.source === source).map((h) => h.id));
      const rawMessages = await db.all<RawMessage>('status-page-messages', {
        ticketId,
        maxChars: maxTextChars,
        ids: ids('message'),
      });
      const messages = rawMessages.map(
        (m): PublicMessage => ({
          id: m.id,
          direction: m.direction,
          kind: m.kind,
          from: m.from,
          text: m.text,
          attachmentNames: (JSON.parse(m.attachments) as AttachmentRecord[]).map((a) => a.filename),
          at: m.at,
          truncated: m.truncated === 1,
        }),
      );
      const rawEvents = await db.all<RawEvent>('status-page-events', { ticketId, ids: ids('event') });
      const events = rawEvents.map(
        (e): PublicEvent => ({ id: e.id, type: e.type, detail: JSON.parse(e.detail) as Record<string, unknown>, at: e.at }),
      );
      return {
        ticket,
        messages,
        events,
        queuePosition: await records.queuePosition(ticket),
        rating: await ratingOf(db, ticketId),
      };
    });
  }

  /**
   * Revokes every status link of a ticket. The next mail to a recipient
   * carries a fresh link, because the store issues one whenever none is active.
   */
  revokeLinks(ref: string, now: number): Promise<{ ticket: TicketRow; revoked: number } | null> {
    return this.engine.transaction(async (tx) => {
      const records = new TicketRecords(tx);
      const ticket = await records.ticketByRef(ref);
      if (!ticket) return null;
      const revoked = (await tx.run('revoke-status-links', [now, ticket.id])).changes;
      await records.event(ticket.id, 'links-revoked', false, { count: revoked }, now);
      return { ticket, revoked };
    });
  }

  rate(ticketId: number, rating: { score: number; comment: string }, now: number): Promise<RateOutcome> {
    return this.engine.transaction((tx) => rateTicket(tx, ticketId, rating, now));
  }

  /** Whether a write can succeed right now (readiness): the engine's own probe. */
  probeWrite(): Promise<WriteProbe> {
    return this.engine.probeWrite();
  }
}

import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AttachmentRecord } from '../core/types.js';
import type { SqliteStore } from './sqlite-store.js';
import type { TicketRow } from './store.js';

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
}

/** Fewer spare pages than this (one insert with its index updates) and the next write may fail. */
const MIN_SPARE_PAGES = 16;
/** Less free space than this on the database's file system and the next write, or WAL growth, may fail. */
const MIN_FREE_DISK_BYTES = 16 * 1024 * 1024;

/** `code` is SQLite's error code (e.g. SQLITE_BUSY, SQLITE_READONLY), `message` its text. */
export type WriteProbe = { ok: true } | { ok: false; code: string; message: string };

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

/** The status page's reads and the link revocation, over the embedded store. */
export class StatusPageStore {
  constructor(private readonly store: SqliteStore) {}

  linkByHash(hash: string): StatusLinkRow | null {
    return (this.store.s('status-link-by-hash').get(hash) as StatusLinkRow | undefined) ?? null;
  }

  /**
   * Public messages and events only; internal notes, bounces and link events
   * never leave here. `pick` chooses, from the heads of the whole history,
   * the entries to show; only theirs are read, each message text up to
   * `maxTextChars`. One snapshot, so the page and its numbering agree.
   */
  pageData(ticketId: number, pick: (heads: TimelineHead[]) => TimelineHead[], maxTextChars: number): StatusPageData | null {
    return this.store.db.transaction(() => {
      const ticket = this.store.ticketRow(ticketId);
      if (!ticket) return null;
      const heads: TimelineHead[] = [
        ...(this.store.s('status-page-message-heads').all(ticketId) as { id: number; at: number }[]).map(
          (m): TimelineHead => ({ source: 'message', id: m.id, type: 'message', at: m.at }),
        ),
        ...(this.store.s('status-page-event-heads').all(ticketId) as { id: number; type: string; at: number }[]).map(
          (e): TimelineHead => ({ source: 'event', id: e.id, type: e.type, at: e.at }),
        ),
      ];
      const picked = pick(heads);
      const ids = (source: TimelineHead['source']) => JSON.stringify(picked.filter((h) => h.source === source).map((h) => h.id));
      const rawMessages = this.store.s('status-page-messages').all({ ticketId, maxChars: maxTextChars, ids: ids('message') }) as RawMessage[];
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
      const rawEvents = this.store.s('status-page-events').all({ ticketId, ids: ids('event') }) as RawEvent[];
      const events = rawEvents.map(
        (e): PublicEvent => ({ id: e.id, type: e.type, detail: JSON.parse(e.detail) as Record<string, unknown>, at: e.at }),
      );
      return { ticket, messages, events, queuePosition: this.store.queuePosition(ticket) };
    })();
  }

  /**
   * Revokes every status link of a ticket. The next mail to a recipient
   * carries a fresh link, because the store issues one whenever none is active.
   */
  revokeLinks(ref: string, now: number): { ticket: TicketRow; revoked: number } | null {
    return this.store.db.transaction(() => {
      const found = this.store.s('ticket-id-by-ref').get(ref) as { id: number } | undefined;
      const ticket = found ? this.store.ticketRow(found.id) : null;
      if (!ticket) return null;
      const revoked = this.store.s('revoke-status-links').run(now, ticket.id).changes;
      this.store.event(ticket.id, 'links-revoked', false, { count: revoked }, now);
      return { ticket, revoked };
    })();
  }

  /**
   * Whether a write can succeed right now (readiness): a write transaction
   * can be opened, and the database has room to grow. The lock alone says
   * nothing about room: a full database (its max_page_count reached, or its
   * file system out of space) still takes the lock, then fails every insert
   * with SQLITE_FULL.
   */
  probeWrite(): WriteProbe {
    try {
      this.store.db.transaction(() => this.store.s('readiness-write-probe').run()).immediate();
    } catch (err) {
      return { ok: false, code: (err as { code?: string }).code ?? 'UNKNOWN', message: (err as Error).message };
    }
    const db = this.store.db;
    const pragma = (name: string) => db.pragma(name, { simple: true }) as number;
    const spare = pragma('max_page_count') - pragma('page_count') + pragma('freelist_count');
    if (spare < MIN_SPARE_PAGES) {
      return { ok: false, code: 'SQLITE_FULL', message: `the database is at its max_page_count (${spare} page(s) to spare)` };
    }
    if (!db.memory) {
      const fs = statfsSync(dirname(db.name));
      const free = fs.bavail * fs.bsize;
      if (free < MIN_FREE_DISK_BYTES) {
        return { ok: false, code: 'SQLITE_FULL', message: `only ${free} bytes free on the database's file system` };
      }
    }
    return { ok: true };
  }
}

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { isDeliveryFailure } from '../core/delivery-status.js';
import { createPrivateFileSync, makePrivateDirSync, restrictFileSync } from '../core/private-files.js';
import type { Address, BounceInfo, MessageOrigin, ParsedMessage, SenderAuthentication, TicketStatus } from '../core/types.js';
import { decideThread, type ThreadContext, type TicketSnapshot } from '../thread/decide-thread.js';
import { referencesInSubject } from '../thread/reference.js';
import { StatusLinks } from '../web/status-links.js';
import { migrate, pendingMigrations } from './migrate.js';
import { loadNamedQueries } from './named-queries.js';
import type {
  ImapCursor,
  IntakeItem,
  IntakeOutcome,
  IntakePolicy,
  IntakeResult,
  IntakeStageOk,
  MessageSummary,
  OutboundDraft,
  OutboxCounts,
  OutboxEntry,
  OutboxJob,
  QuarantineEntry,
  Store,
  TicketAutoReply,
  TicketDetail,
  TicketRow,
  TicketSummary,
  UnsettledReceipt,
} from './store.js';

export const TICKET_NOT_FOUND = 'TICKETD_TICKET_NOT_FOUND';
const HOUR_MS = 3_600_000;

export class TicketNotFoundError extends Error {
  readonly code = TICKET_NOT_FOUND;
  constructor(ref: string) {
    super(`no ticket with reference ${ref}`);
  }
}

/** Why a ticket changed; the SLA engine recomputes its deadlines on each. */
export type TicketChange = 'created' | 'customer-reply' | 'reopened' | 'agent-reply' | 'status';

export interface SqliteStoreOptions {
  /** Skip applying migrations (the CLI's `migrate` does it explicitly). */
  migrate?: boolean;
  busyTimeoutMs?: number;
}

/**
 * The embedded store. better-sqlite3 is synchronous, so every method runs to
 * completion inside the event-loop turn that called it: a transaction can
 * never interleave with another. Write transactions begin IMMEDIATE: one that
 * reads first and upgrades to writing later fails at once with SQLITE_BUSY
 * when another process (the CLI, `ingest`) holds the lock, instead of
 * waiting out the busy timeout.
 */
export class SqliteStore implements Store {
  readonly db: Database;
  private readonly q: Record<string, Statement>;
  private readonly sql: ReadonlyMap<string, string>;
  /**
   * Called inside the transaction that changed a ticket, so whatever it
   * writes (SLA deadlines) commits or rolls back together with the change.
   */
  afterTicketChange: ((ticketId: number, change: TicketChange, now: number) => void) | null = null;
  /**
   * Within one intake transaction: per mailbox, the queue position of the
   * ticket it created last. Counting open tickets costs a scan of all of
   * them, so each new ticket of a batch counts one more than the one before
   * (nothing else writes while the transaction holds the lock) instead of
   * counting anew; a status change in the batch clears it.
   */
  private batchQueue: Map<string, { position: number; createdAt: number }> | null = null;
  /**
   * Within one intake transaction: acknowledgements queued in the last hour,
   * counted at the first message that needs it and carried forward as the
   * batch queues more, instead of a count over up to an hour of
   * acknowledgements for every message of a backlog. Undefined outside a
   * batch, null until counted (or after a savepoint rolled one back).
   */
  private batchAutoReplies: number | null | undefined = undefined;

  constructor(path: string, opts: SqliteStoreOptions = {}) {
    if (path !== ':memory:') {
      // SQLite gives -wal and -shm the mode of the database file, so a private
      // database file keeps all three private.
      makePrivateDirSync(dirname(path));
      if (existsSync(path)) restrictFileSync(path);
      else createPrivateFileSync(path);
    }
    this.db = new BetterSqlite3(path);
    this.db.pragma('journal_mode = WAL');
    if (path !== ':memory:') for (const suffix of ['-wal', '-shm']) restrictFileSync(`${path}${suffix}`);
    // We move or delete mail on the server only after a commit, so a
    // committed row must survive a power cut: FULL syncs the WAL on commit.
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 5000}`);
    this.db.pragma('foreign_keys = ON');
    // Deleted and overwritten content is zeroed, so a status link redacted
    // after sending does not linger in free pages of the file.
    this.db.pragma('secure_delete = ON');
    if (opts.migrate !== false) migrate(this.db);
    this.q = {};
    this.sql = loadNamedQueries('sqlite');
    // Prepared up front, so a broken query fails at open; but a database still
    // waiting for `ticketd migrate` lacks the tables they name, and then each
    // is prepared on first use (after the migration).
    if (pendingMigrations(this.db) === 0) for (const name of this.sql.keys()) this.s(name);
  }

  /** A prepared named query; the store's other files (status page, SLA) share them. */
  s(name: string): Statement {
    let stmt = this.q[name];
    if (!stmt) {
      const sql = this.sql.get(name);
      if (sql === undefined) throw new Error(`unknown named query ${name}`);
      stmt = this.q[name] = this.db.prepare(sql);
    }
    return stmt;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  // ---- intake --------------------------------------------------------------

  async takeBatch(items: IntakeItem[], policy: IntakePolicy): Promise<IntakeResult[]> {
    const results: IntakeResult[] = [];
    this.batchQueue = new Map();
    this.batchAutoReplies = null;
    try {
      this.db.transaction(() => {
        for (const item of items) results.push(this.takeOne(item, policy));
      }).immediate();
    } finally {
      this.batchQueue = null;
      this.batchAutoReplies = undefined;
    }
    return results;
  }

  private takeOne(item: IntakeItem, policy: IntakePolicy): IntakeResult {
    const now = policy.clock.now().getTime();
    const origin = item.origin;
    if (origin.via === 'imap') {
      const seen = this.s('receipt-exists').get(origin.mailbox, origin.uidValidity, origin.uid) as
        | { outcome: IntakeOutcome }
        | undefined;
      if (seen) return result(origin, 'duplicate', 'uid-already-taken', null, false, null);
    }
    if (!item.stage.ok) return this.quarantine(item, item.stage.reason, now);
    const stage = item.stage;
    try {
      // A savepoint per message: a stage that throws undoes only this
      // message, which is then quarantined while the batch goes on.
      return this.db.transaction(() => this.applyMessage(item, stage, policy, now))();
    } catch (err) {
      // The savepoint undid whatever the message did to the queue.
      this.batchQueue?.delete(item.origin.mailbox);
      if (this.batchAutoReplies !== undefined) this.batchAutoReplies = null;
      return this.quarantine(item, `stage-error: ${(err as Error).message}`, now);
    }
  }

  private applyMessage(item: IntakeItem, stage: IntakeStageOk, policy: IntakePolicy, now: number): IntakeResult {
    const { message: msg, classification: cls } = stage;
    const mailbox = item.origin.mailbox;
    const messageId = msg.messageId ?? `sha256:${msg.sha256}`;
    // A message for several of our mailboxes (To one, Cc another, a list;
    // one IMAP copy per mailbox, or one LMTP delivery with a recipient per
    // desk) is one message: one ticket and one acknowledgement. The copy found
    // later names the ticket the first one made.
    const dup = this.s('inbound-by-message-id').get({ messageId, mailbox, from: msg.from?.address ?? '' }) as
      | { id: number; mailbox: string; ticketId: number | null }
      | undefined;
    if (dup) {
      this.receipt(item.origin, 'duplicate', dup.id, null, now);
      if (dup.mailbox === mailbox) return result(item.origin, 'duplicate', 'message-id-already-taken', null, false, null);
      return result(item.origin, 'duplicate', 'message-id-taken-in-another-mailbox', this.refOf(dup.ticketId), false, null);
    }

    const rules = policy.rulesFor(mailbox);
    const sender = msg.from?.address ?? '';
    const target = stage.replyTarget;
    const auth = stage.senderAuth ?? null;
    const flag = auth?.dmarc === 'fail' ? 'dmarc-fail' : null;
    // Every limit and the suppression list are about the address the reply would reach.
    const rcpt = target.ok ? target.address : null;
    const ctx: ThreadContext = {
      byMessageId: this.ticketsByMessageIds(
        cls.kind === 'bounce' && cls.bounce ? cls.bounce.originalMessageIds : [...msg.inReplyTo, ...msg.references.slice().reverse()],
        mailbox,
      ),
      byReference: referencesInSubject(msg.subject, policy.referencePrefixes)
        .map((ref) => this.snapshotByRef(ref))
        .filter((t): t is TicketSnapshot => t !== null),
      acksLastHour: rcpt ? this.count('acks-to-since', rcpt, now - HOUR_MS) : 0,
      ticketsLastHour: rcpt ? this.count('tickets-acked-to-since', rcpt, now - HOUR_MS) : 0,
      senderSuppressed: rcpt ? this.s('is-suppressed').get(rcpt) !== undefined : false,
      replyWithheld: flag ?? (target.ok ? null : target.reason),
      autoRepliesLastHour: this.autoRepliesSince(now - HOUR_MS),
      now,
    };
    const verdict = decideThread(msg, cls, ctx, rules);
    this.s('insert-raw').run(msg.sha256, msg.size, item.raw, now);

    switch (verdict.action) {
      case 'ignore': {
        const row = this.insertInbound(null, mailbox, msg, cls.kind, messageId, now);
        this.receipt(item.origin, 'ignored', row, null, now);
        return result(item.origin, 'ignored', verdict.reason, null, false, null);
      }
      case 'record': {
        const row = this.insertInbound(verdict.ticketId, mailbox, msg, cls.kind, messageId, now);
        let reason = verdict.reason;
        if (verdict.ticketId !== null) {
          if (cls.kind === 'bounce') {
            const { suppressed, refused } = this.suppressBounced(cls.bounce, now);
            // A bounce text may name other addresses in passing; only a report
            // that suppressed nothing and listed strangers is worth a look.
            if (suppressed.length === 0 && refused.length > 0) reason = 'bounce-not-our-recipient';
            this.event(verdict.ticketId, 'delivery-failure', false, { recipients: cls.bounce?.recipients ?? [], suppressed, refused }, now);
          } else {
            this.event(verdict.ticketId, 'out-of-office', false, { from: sender }, now);
          }
          this.s('touch-ticket').run(now, verdict.ticketId);
        }
        this.receipt(item.origin, 'recorded', row, null, now);
        return result(item.origin, 'recorded', reason, this.refOf(verdict.ticketId), false, null);
      }
      case 'thread': {
        const row = this.insertInbound(verdict.ticketId, mailbox, msg, 'reply', messageId, now);
        this.addParticipants(verdict.ticketId, msg, policy, 'cc');
        if (flag !== null) this.recordUnauthenticated(verdict.ticketId, flag, auth, now);
        if (verdict.newStatus) {
          this.batchQueue?.delete(mailbox);
          this.s('update-ticket-status').run({ id: verdict.ticketId, status: verdict.newStatus, reason: null, now });
          this.event(verdict.ticketId, verdict.reason === 'reopened' ? 'reopened' : 'status', true, { status: verdict.newStatus }, now);
        } else {
          this.s('touch-ticket').run(now, verdict.ticketId);
        }
        this.afterTicketChange?.(verdict.ticketId, verdict.reason === 'reopened' ? 'reopened' : 'customer-reply', now);
        this.receipt(item.origin, 'threaded', row, null, now);
        return result(item.origin, 'threaded', verdict.reason, this.refOf(verdict.ticketId), false, null);
      }
      case 'new-ticket': {
        const ticket = this.createTicket(mailbox, msg, verdict.linkTo, policy, now);
        this.s('set-ticket-auto-reply').run({ id: ticket.id, ackTo: target.address ?? null, ackWithheld: verdict.ackSuppressedBy });
        const row = this.insertInbound(ticket.id, mailbox, msg, cls.kind === 'request' ? 'request' : cls.kind, messageId, now);
        this.event(ticket.id, 'received', true, {}, now);
        this.afterTicketChange?.(ticket.id, 'created', now);
        if (verdict.linkTo !== null) this.event(ticket.id, 'linked', false, { to: this.refOf(verdict.linkTo), why: verdict.reason }, now);
        if (flag !== null) this.recordUnauthenticated(ticket.id, flag, auth, now);
        let ackQueued = false;
        if (verdict.ackSuppressedBy === null && target.ok) {
          const to: Address = { address: target.address, name: target.name };
          const statusUrl = policy.statusUrl(this.tokenFor(ticket.id, to.address, policy.links, now));
          const draft = policy.composeAck({ ticket, to, inbound: msg, statusUrl, queuePosition: this.newTicketQueuePosition(ticket)! });
          this.queueOutbound(ticket.id, mailbox, draft, now);
          this.event(ticket.id, 'acknowledged', true, {}, now);
          if (typeof this.batchAutoReplies === 'number') this.batchAutoReplies++;
          ackQueued = true;
        } else {
          this.newTicketQueuePosition(ticket, false);
          this.event(ticket.id, 'ack-suppressed', false, { why: verdict.ackSuppressedBy }, now);
        }
        this.receipt(item.origin, 'taken', row, null, now);
        return result(item.origin, 'taken', verdict.ackSuppressedBy ?? verdict.reason, ticket.ref, ackQueued, null);
      }
    }
  }

  /**
   * Suppresses the failed recipients of a delivery report, but only those a
   * message of ours went to: the report must name the Message-ID of an
   * outgoing message in this database (one ticketd generated), and the address
   * must be among that message's To or envelope recipients. Anyone can send a
   * report listing any address, so whatever else it lists is refused.
   */
  private suppressBounced(bounce: BounceInfo | null, now: number): { suppressed: string[]; refused: string[] } {
    const sentTo = new Set<string>();
    for (const id of bounce?.originalMessageIds ?? []) {
      for (const row of this.s('outbound-recipients').all(id) as { toAddrs: string; envelopeTo: string | null }[]) {
        const to = JSON.parse(row.toAddrs) as (Address | string)[];
        const envelope = JSON.parse(row.envelopeTo ?? '[]') as string[];
        for (const a of [...to, ...envelope]) sentTo.add((typeof a === 'string' ? a : a.address).toLowerCase());
      }
    }
    const suppressed: string[] = [];
    const refused: string[] = [];
    for (const r of (bounce?.recipients ?? []).filter(isDeliveryFailure)) {
      const address = r.address.toLowerCase();
      if (sentTo.has(address)) {
        this.s('insert-suppression').run(address, 'bounced', now);
        suppressed.push(address);
      } else {
        refused.push(address);
      }
    }
    return { suppressed, refused };
  }

  /** A trusted MTA found the sender forged: the ticket is flagged and the finding kept as an internal event. */
  private recordUnauthenticated(ticketId: number, flag: string, auth: SenderAuthentication | null, now: number): void {
    this.s('flag-ticket').run(flag, ticketId);
    this.event(ticketId, 'sender-unauthenticated', false, { ...auth }, now);
  }

  private quarantine(item: IntakeItem, reason: string, now: number): IntakeResult {
    const sha = sha256Of(item);
    this.s('insert-raw').run(sha, item.raw.length, item.raw, now);
    const id = Number(
      this.s('insert-quarantine').run(item.origin.mailbox, JSON.stringify(item.origin), sha, reason, now).lastInsertRowid,
    );
    this.receipt(item.origin, 'quarantined', null, id, now);
    return result(item.origin, 'quarantined', reason, null, false, id);
  }

  private receipt(origin: MessageOrigin, outcome: IntakeOutcome, messageRow: number | null, quarantineId: number | null, now: number) {
    if (origin.via !== 'imap') return;
    this.s('insert-receipt').run({
      mailbox: origin.mailbox,
      uidValidity: origin.uidValidity,
      uid: origin.uid,
      outcome,
      messageRow,
      quarantineId,
      now,
    });
    this.s('upsert-cursor').run({ mailbox: origin.mailbox, uidValidity: origin.uidValidity, lastUid: origin.uid, now });
  }

  private ticketsByMessageIds(ids: string[], mailbox: string): TicketSnapshot[] {
    const seen = new Set<number>();
    const found: TicketSnapshot[] = [];
    for (const id of ids) {
      for (const row of this.s('ticket-by-message-id').all(id, mailbox) as { id: number }[]) {
        if (seen.has(row.id)) continue;
        seen.add(row.id);
        const snap = this.snapshot(row.id);
        if (snap) found.push(snap);
      }
    }
    return found;
  }

  private snapshotByRef(ref: string): TicketSnapshot | null {
    const row = this.s('ticket-id-by-ref').get(ref) as { id: number } | undefined;
    return row ? this.snapshot(row.id) : null;
  }

  private snapshot(id: number): TicketSnapshot | null {
    const t = this.ticketRow(id);
    if (!t) return null;
    const participants = (this.s('participants-of').all(id) as { address: string }[]).map((p) => p.address);
    return { id, ref: t.ref, status: t.status, participants, closedAt: t.closedAt };
  }

  ticketRow(id: number): TicketRow | null {
    return (this.s('ticket-by-id').get(id) as TicketRow | undefined) ?? null;
  }

  private refOf(id: number | null): string | null {
    return id === null ? null : (this.ticketRow(id)?.ref ?? null);
  }

  private autoRepliesSince(since: number): number {
    if (this.batchAutoReplies === undefined) return this.count('auto-replies-since', since);
    this.batchAutoReplies ??= this.count('auto-replies-since', since);
    return this.batchAutoReplies;
  }

  private count(query: string, ...args: unknown[]): number {
    return (this.s(query).get(...args) as { n: number }).n;
  }

  private createTicket(mailbox: string, msg: ParsedMessage, linkTo: number | null, policy: IntakePolicy, now: number): TicketRow {
    const requester = msg.from?.address ?? '';
    const replyTo = msg.replyTo[0]?.address ?? requester;
    for (let attempt = 0; ; attempt++) {
      const ref = policy.newReference(mailbox);
      if (this.s('ticket-id-by-ref').get(ref)) {
        // 30 bits of code: collisions are rare but possible on a busy desk.
        if (attempt < 20) continue;
        throw new Error('could not find a free reference');
      }
      const id = Number(
        this.s('insert-ticket').run({
          ref,
          mailbox,
          subject: msg.subject,
          requester,
          requesterName: msg.from?.name ?? '',
          replyTo,
          language: msg.language,
          linkedTo: linkTo,
          now,
        }).lastInsertRowid,
      );
      this.s('insert-participant').run(id, requester, 'requester');
      this.addParticipants(id, msg, policy, 'cc');
      return this.ticketRow(id)!;
    }
  }

  private addParticipants(ticketId: number, msg: ParsedMessage, policy: IntakePolicy, role: 'cc') {
    const own = new Set(policy.ownAddresses);
    if (msg.from && !own.has(msg.from.address)) this.s('insert-participant').run(ticketId, msg.from.address, role);
    for (const a of [...msg.cc, ...msg.to, ...msg.replyTo]) {
      if (!own.has(a.address)) this.s('insert-participant').run(ticketId, a.address, role);
    }
  }

  private insertInbound(ticketId: number | null, mailbox: string, msg: ParsedMessage, kind: string, messageId: string, now: number): number {
    return Number(
      this.s('insert-message').run({
        ticketId,
        mailbox,
        direction: 'in',
        kind,
        messageId,
        from: msg.from?.address ?? '',
        rcpt: null,
        to: JSON.stringify(msg.to.map((a) => a.address)),
        cc: JSON.stringify(msg.cc.map((a) => a.address)),
        subject: msg.subject,
        text: msg.text,
        html: null,
        headers: '{}',
        attachments: JSON.stringify(msg.attachments),
        rawSha256: msg.sha256,
        sentDate: msg.date ? msg.date.getTime() : null,
        now,
        public: 1,
      }).lastInsertRowid,
    );
  }

  /** Message-IDs of the ticket's public conversation, oldest first, for In-Reply-To and References. */
  threadIds(ticketId: number): string[] {
    return (this.s('thread-message-ids').all(ticketId) as { messageId: string }[]).map((r) => r.messageId).reverse();
  }

  /** Queues a mail: its message row and outbox row. Call inside the transaction that caused it. */
  queueOutbound(ticketId: number, mailbox: string, draft: OutboundDraft, now: number): number {
    const rcpt = draft.to[0]?.address ?? null;
    const row = Number(
      this.s('insert-message').run({
        ticketId,
        mailbox,
        direction: 'out',
        kind: draft.kind,
        messageId: draft.messageId,
        from: draft.from.address,
        rcpt,
        to: JSON.stringify(draft.to),
        cc: '[]',
        subject: draft.subject,
        text: draft.text,
        html: draft.html,
        headers: JSON.stringify({ ...draft.headers, inReplyTo: draft.inReplyTo, references: draft.references, fromName: draft.from.name }),
        attachments: '[]',
        rawSha256: null,
        sentDate: null,
        now,
        public: draft.kind === 'staff-warning' ? 0 : 1,
      }).lastInsertRowid,
    );
    this.s('insert-outbox').run(row, mailbox, draft.from.address, JSON.stringify(draft.to.map((a) => a.address)), now, now);
    return row;
  }

  /** The recipient's status-page token for a ticket, issued on first use. */
  tokenFor(ticketId: number, recipient: string, links: StatusLinks, now: number): string {
    const active = this.s('active-token').get(ticketId, recipient) as { nonce: string } | undefined;
    if (active) return links.token(active.nonce);
    const nonce = links.newNonce();
    const token = links.token(nonce);
    this.s('insert-token').run(ticketId, recipient, nonce, StatusLinks.hash(token), now);
    return token;
  }

  /** Open requests of the same mailbox ahead of this ticket: the acknowledgement, the page and the delay notice all use this. */
  queuePosition(t: TicketRow): number {
    return (this.s('queue-position').get({ mailbox: t.mailbox, createdAt: t.createdAt, id: t.id }) as { n: number }).n;
  }

  /**
   * queuePosition of a ticket just created by the intake transaction in
   * progress; called for every ticket it creates, `counted` false when
   * nobody needs the figure (then nothing is counted for it).
   */
  private newTicketQueuePosition(t: TicketRow, counted = true): number | null {
    const last = this.batchQueue?.get(t.mailbox);
    // Exact unless the clock stepped back between two messages of the batch.
    const follows = last !== undefined && t.createdAt >= last.createdAt;
    const position = follows ? last.position + 1 : counted ? this.queuePosition(t) : null;
    if (position === null) this.batchQueue?.delete(t.mailbox);
    else this.batchQueue?.set(t.mailbox, { position, createdAt: t.createdAt });
    return position;
  }

  event(ticketId: number, type: string, isPublic: boolean, detail: Record<string, unknown>, now: number): void {
    this.s('insert-event').run(ticketId, type, isPublic ? 1 : 0, JSON.stringify(detail), now);
  }

  // ---- IMAP cursor and receipts --------------------------------------------

  async getCursor(mailbox: string): Promise<ImapCursor | null> {
    return (this.s('get-cursor').get(mailbox) as ImapCursor | undefined) ?? null;
  }

  async resetCursor(mailbox: string, uidValidity: number, at: number): Promise<void> {
    this.s('upsert-cursor').run({ mailbox, uidValidity, lastUid: 0, now: at });
  }

  async markWatched(mailbox: string, since: number | null): Promise<void> {
    this.s('mark-watched').run(mailbox, since);
  }

  async markRead(mailbox: string, at: number): Promise<void> {
    this.s('mark-read').run(mailbox, at);
  }

  async unsettledReceipts(mailbox: string, uidValidity: number): Promise<UnsettledReceipt[]> {
    return this.s('unsettled-receipts').all(mailbox, uidValidity) as UnsettledReceipt[];
  }

  async knownUids(mailbox: string, uidValidity: number, uids: number[]): Promise<Set<number>> {
    const stmt = this.s('receipt-exists');
    return new Set(uids.filter((uid) => stmt.get(mailbox, uidValidity, uid) !== undefined));
  }

  async markSettled(mailbox: string, uidValidity: number, uids: number[], at: number): Promise<void> {
    const stmt = this.s('settle-receipt');
    this.db.transaction(() => {
      for (const uid of uids) stmt.run(at, mailbox, uidValidity, uid);
    }).immediate();
  }

  // ---- outbox ----------------------------------------------------------------

  async claimOutbox(now: number, limit: number, leaseMs: number, fresh = 0): Promise<OutboxJob[]> {
    return this.db.transaction(() => {
      // The newest never-tried rows first, then the oldest due ones. Leasing
      // moves a row's next attempt past `now`, so the second query cannot
      // return what the first one took.
      const rows = this.s('due-outbox-fresh').all(now, Math.min(fresh, limit)) as DueRow[];
      // The lease keeps a second worker (or a restart) from sending the same
      // row while this one is still talking to the server.
      for (const r of rows) this.s('lease-outbox').run(now + leaseMs, r.id);
      const oldest = limit > rows.length ? (this.s('due-outbox').all(now, limit - rows.length) as DueRow[]) : [];
      for (const r of oldest) this.s('lease-outbox').run(now + leaseMs, r.id);
      // Interleaved, so the send order within a claim favours neither end.
      const both: DueRow[] = [];
      for (let i = 0; i < Math.max(rows.length, oldest.length); i++) both.push(...[rows[i], oldest[i]].filter((r) => r !== undefined));
      return both.map(toOutboxJob);
    }).immediate();
  }

  async saveOutboundRaw(items: { messageRow: number; raw: Buffer }[], now: number): Promise<void> {
    this.db.transaction(() => {
      for (const { messageRow, raw } of items) {
        const sha = sha256Hex(raw);
        this.s('insert-raw').run(sha, raw.length, raw, now);
        this.s('set-message-raw').run(sha, messageRow);
      }
    }).immediate();
  }

  async markOutboxSent(ids: number[], now: number): Promise<void> {
    this.db.transaction(() => {
      for (const id of ids) {
        this.s('outbox-sent').run(now, id);
        this.redactSentStatusLinks(id);
      }
    }).immediate();
  }

  async releaseOutbox(ids: number[], now: number): Promise<void> {
    this.db.transaction(() => {
      for (const id of ids) this.s('outbox-release').run(now, id);
    }).immediate();
  }

  /**
   * Once a mail is sent its status links are needed no more: the token in
   * the stored text and HTML becomes `/t/[redacted]` (staff still see where
   * the link was), and the sent bytes are dropped. Only strings that hash to
   * one of the ticket's tokens are touched.
   */
  private redactSentStatusLinks(outboxId: number): void {
    const mail = this.s('sent-mail-for-redaction').get(outboxId) as
      | { id: number; ticketId: number | null; text: string; html: string | null; rawSha: string | null }
      | undefined;
    if (!mail || mail.ticketId === null) return;
    const hashes = new Set((this.s('ticket-token-hashes').all(mail.ticketId) as { tokenHash: string }[]).map((r) => r.tokenHash));
    let found = false;
    const redact = (body: string) =>
      body.replace(/\/t\/([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/g, (match, token: string) => {
        if (!hashes.has(StatusLinks.hash(token))) return match;
        found = true;
        return '/t/[redacted]';
      });
    const text = redact(mail.text);
    const html = mail.html === null ? null : redact(mail.html);
    if (!found) return;
    this.s('redact-sent-mail').run({ text, html, id: mail.id });
    if (mail.rawSha !== null) this.s('drop-unused-raw').run({ sha: mail.rawSha });
  }

  async markOutboxRetry(id: number, nextAttemptAt: number, error: string): Promise<void> {
    this.s('outbox-retry').run(nextAttemptAt, error, id);
  }

  async markOutboxFailed(id: number, error: string, now: number): Promise<void> {
    this.s('outbox-failed').run(error, now, id);
  }

  async listOutbox(filter: { failedOnly?: boolean; id?: number } = {}): Promise<OutboxEntry[]> {
    const rows = this.s('list-outbox').all({ id: filter.id ?? null, failed: filter.failedOnly ? 1 : 0 }) as RawOutboxEntry[];
    return rows.map((r) => ({ ...r, envelopeTo: JSON.parse(r.envelopeTo) as string[] }));
  }

  async requeueOutbox(which: { id: number } | 'failed', now: number): Promise<number[]> {
    const rows = this.s('outbox-requeue').all({ id: which === 'failed' ? null : which.id, now }) as { id: number }[];
    return rows.map((r) => r.id);
  }

  async outboxCounts(): Promise<OutboxCounts> {
    const counts: OutboxCounts = { pending: 0, failed: 0, sent: 0 };
    for (const r of this.s('outbox-counts').all() as { status: keyof OutboxCounts; n: number }[]) counts[r.status] = r.n;
    return counts;
  }


  // ---- tickets ---------------------------------------------------------------

  async listTickets(filter: { status?: TicketStatus; mailbox?: string } = {}): Promise<TicketSummary[]> {
    const rows = this.s('list-tickets').all({ status: filter.status ?? null, mailbox: filter.mailbox ?? null, id: null });
    return (rows as RawSummary[]).map(toSummary);
  }

  async ticketByRef(ref: string): Promise<TicketRow | null> {
    const row = this.s('ticket-id-by-ref').get(ref) as { id: number } | undefined;
    return row ? this.ticketRow(row.id) : null;
  }

  async ticketDetail(ref: string): Promise<TicketDetail | null> {
    const t = await this.ticketByRef(ref);
    if (!t) return null;
    const summary = this.s('list-tickets').get({ status: null, mailbox: null, id: t.id }) as RawSummary;
    const messages = (this.s('ticket-messages').all(t.id) as RawMessage[]).map(
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
    const events = (this.s('ticket-events').all(t.id) as { type: string; public: number; detail: string; at: number }[]).map((e) => ({
      type: e.type,
      public: e.public === 1,
      detail: JSON.parse(e.detail) as Record<string, unknown>,
      at: e.at,
    }));
    const autoReply = this.s('ticket-auto-reply').get(t.id) as TicketAutoReply;
    return { ...toSummary(summary), ...autoReply, messages, events };
  }

  async addAgentReply(
    ref: string,
    compose: (ticket: TicketRow, statusUrl: string, thread: { inReplyTo: string | null; references: string[] }) => OutboundDraft,
    policy: Pick<IntakePolicy, 'statusUrl' | 'links'>,
    now: number,
  ): Promise<TicketRow> {
    return this.db.transaction(() => {
      const t = this.ticketRowByRef(ref);
      const ids = this.threadIds(t.id);
      const statusUrl = policy.statusUrl(this.tokenFor(t.id, t.replyTo, policy.links, now));
      const draft = compose(t, statusUrl, { inReplyTo: ids.at(-1) ?? null, references: ids });
      this.queueOutbound(t.id, t.mailbox, draft, now);
      this.s('mark-first-response').run({ id: t.id, now });
      this.event(t.id, 'reply', true, {}, now);
      this.afterTicketChange?.(t.id, 'agent-reply', now);
      return this.ticketRow(t.id)!;
    }).immediate();
  }

  async setStatus(ref: string, status: TicketStatus, opts: { reason?: string | null; now: number }): Promise<TicketRow> {
    return this.db.transaction(() => {
      const t = this.ticketRowByRef(ref);
      this.s('update-ticket-status').run({ id: t.id, status, reason: opts.reason ?? null, now: opts.now });
      this.event(t.id, 'status', true, { status, ...(status === 'on-hold' && opts.reason ? { reason: opts.reason } : {}) }, opts.now);
      this.afterTicketChange?.(t.id, 'status', opts.now);
      return this.ticketRow(t.id)!;
    }).immediate();
  }

  async handoff(ref: string, team: string, note: string | null, now: number): Promise<TicketRow> {
    return this.db.transaction(() => {
      const t = this.ticketRowByRef(ref);
      this.s('set-ticket-team').run(team, now, t.id);
      this.event(t.id, 'handoff', true, { team }, now);
      if (note) this.event(t.id, 'note', false, { team, text: note }, now);
      return this.ticketRow(t.id)!;
    }).immediate();
  }

  private ticketRowByRef(ref: string): TicketRow {
    const row = this.s('ticket-id-by-ref').get(ref) as { id: number } | undefined;
    const t = row ? this.ticketRow(row.id) : null;
    if (!t) throw new TicketNotFoundError(ref);
    return t;
  }

  // ---- quarantine ------------------------------------------------------------

  async listQuarantine(opts: { includeReleased?: boolean } = {}): Promise<QuarantineEntry[]> {
    return (this.s('list-quarantine').all({ all: opts.includeReleased ? 1 : 0 }) as RawQuarantine[]).map(toQuarantine);
  }

  async quarantineRaw(id: number): Promise<{ entry: QuarantineEntry; raw: Buffer } | null> {
    const row = this.s('quarantine-by-id').get(id) as (RawQuarantine & { raw: Buffer }) | undefined;
    return row ? { entry: toQuarantine(row), raw: row.raw } : null;
  }

  async markQuarantineReleased(id: number, outcome: string, now: number): Promise<void> {
    this.s('release-quarantine').run(now, outcome, id);
  }
}

interface DueRow {
  id: number;
  messageRow: number;
  mailbox: string;
  envelopeFrom: string;
  envelopeTo: string;
  attempts: number;
  kind: string;
  headers: string;
  subject: string;
  text: string;
  html: string | null;
  messageId: string;
  fromAddr: string;
  toAddrs: string;
  raw: Buffer | null;
}

type RawOutboxEntry = Omit<OutboxEntry, 'envelopeTo'> & { envelopeTo: string };

function toOutboxJob(r: DueRow): OutboxJob {
  const h = JSON.parse(r.headers) as Record<string, unknown>;
  const { inReplyTo, references, fromName, ...headers } = h;
  return {
    id: r.id,
    messageRow: r.messageRow,
    mailbox: r.mailbox,
    kind: r.kind,
    envelopeFrom: r.envelopeFrom,
    envelopeTo: JSON.parse(r.envelopeTo) as string[],
    attempts: r.attempts + 1,
    raw: r.raw,
    draft: {
      kind: r.kind,
      from: { address: r.fromAddr, name: (fromName as string | undefined) ?? '' },
      to: JSON.parse(r.toAddrs) as Address[],
      subject: r.subject,
      text: r.text,
      html: r.html,
      messageId: r.messageId,
      inReplyTo: (inReplyTo as string | null | undefined) ?? null,
      references: (references as string[] | undefined) ?? [],
      headers: headers as Record<string, string>,
    },
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

interface RawQuarantine {
  id: number;
  mailbox: string;
  origin: string;
  reason: string;
  createdAt: number;
  releasedAt: number | null;
  releaseOutcome: string | null;
  size: number;
}

function toQuarantine(r: RawQuarantine): QuarantineEntry {
  return {
    id: r.id,
    mailbox: r.mailbox,
    origin: JSON.parse(r.origin) as MessageOrigin,
    reason: r.reason,
    createdAt: r.createdAt,
    releasedAt: r.releasedAt,
    releaseOutcome: r.releaseOutcome,
    size: r.size,
  };
}

function result(
  origin: MessageOrigin,
  outcome: IntakeOutcome,
  reason: string,
  ref: string | null,
  ackQueued: boolean,
  quarantineId: number | null,
): IntakeResult {
  return { origin, outcome, reason, ref, ackQueued, quarantineId };
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function sha256Of(item: IntakeItem): string {
  return item.stage.ok ? item.stage.message.sha256 : sha256Hex(item.raw);
}

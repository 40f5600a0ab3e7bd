// The intake rules: a batch of parsed and classified messages becomes
// tickets, thread entries, records or quarantine rows in one transaction,
// each message in its own savepoint. The store reads the facts the thread
// stage looks at, the stage (given at construction) decides, and the store
// records the verdict: receipts, rows, events and the acknowledgement.

import { createHash } from 'node:crypto';
import { isDeliveryFailure } from '../core/delivery-status.js';
import type { Address, BounceInfo, MessageOrigin, ParsedMessage, SenderAuthentication } from '../core/types.js';
import type { SqlEngine, SqlSession, SqlTransaction } from './sql-engine.js';
import type {
  IntakeItem,
  IntakeOutcome,
  IntakePolicy,
  IntakeResult,
  IntakeStageOk,
  IntakeStore,
  StoreHooks,
  ThreadContext,
  ThreadStage,
  TicketRow,
  TicketSnapshot,
} from './store.js';
import type { QueryName } from './query-names.js';
import { applyStaffMail, staffMailTicket, staffNoticeAnswered } from './staff-mail-intake.js';
import { addParticipants, createTicket, notifyQueue } from './ticket-opening.js';
import { TicketRecords } from './ticket-records.js';

const HOUR_MS = 3_600_000;

/** What one intake transaction carries from message to message. */
interface Batch {
  /**
   * Per mailbox, the queue position of the ticket it created last. Counting
   * open tickets costs a scan of all of them, so each new ticket of a batch
   * counts one more than the one before (nothing else writes while the
   * transaction holds the lock) instead of counting anew; a status change in
   * the batch clears it.
   */
  queue: Map<string, { position: number; createdAt: number }>;
  /**
   * Acknowledgements queued in the last hour, counted at the first message
   * that needs it and carried forward as the batch queues more, instead of a
   * count over up to an hour of acknowledgements for every message of a
   * backlog. Null until counted (or after a savepoint rolled one back).
   */
  autoReplies: number | null;
}

export class Intake implements IntakeStore {
  constructor(
    private readonly engine: SqlEngine,
    private readonly thread: ThreadStage,
    private readonly hooks: StoreHooks,
  ) {}

  takeBatch(items: IntakeItem[], policy: IntakePolicy): Promise<IntakeResult[]> {
    return this.engine.transaction(
      async (tx) => {
        const batch: Batch = { queue: new Map(), autoReplies: null };
        const results: IntakeResult[] = [];
        for (const item of items) results.push(await this.takeOne(tx, batch, item, policy));
        return results;
      },
      { keys: intakeKeys(items) },
    );
  }

  private async takeOne(tx: SqlTransaction, batch: Batch, item: IntakeItem, policy: IntakePolicy): Promise<IntakeResult> {
    const now = policy.clock.now().getTime();
    const origin = item.origin;
    if (origin.via === 'imap') {
      const seen = await tx.get('receipt-exists', [origin.mailbox, origin.uidValidity, origin.uid]);
      if (seen) return result(origin, 'duplicate', 'uid-already-taken', null, false, null);
    }
    if (!item.stage.ok) return quarantine(tx, item, item.stage.reason, now);
    const stage = item.stage;
    try {
      // A savepoint per message: a stage that throws undoes only this
      // message, which is then quarantined while the batch goes on.
      return await tx.savepoint((sp) => this.applyMessage(sp, batch, item, stage, policy, now));
    } catch (err) {
      // The savepoint undid whatever the message did to the queue.
      batch.queue.delete(item.origin.mailbox);
      batch.autoReplies = null;
      return quarantine(tx, item, `stage-error: ${(err as Error).message}`, now);
    }
  }

  private async applyMessage(
    sp: SqlTransaction,
    batch: Batch,
    item: IntakeItem,
    stage: IntakeStageOk,
    policy: IntakePolicy,
    now: number,
  ): Promise<IntakeResult> {
    const { message: msg, classification: cls } = stage;
    const records = new TicketRecords(sp);
    const mailbox = item.origin.mailbox;
    const messageId = msg.messageId ?? `sha256:${msg.sha256}`;
    // A message for several of our mailboxes (To one, Cc another, a list;
    // one IMAP copy per mailbox, or one LMTP delivery with a recipient per
    // desk) is one message: one ticket and one acknowledgement. The copy found
    // later names the ticket the first one made.
    const dup = await sp.get<{ id: number; mailbox: string; ticketId: number | null }>('inbound-by-message-id', {
      messageId,
      mailbox,
      from: msg.from?.address ?? '',
    });
    if (dup) {
      await receipt(sp, item.origin, 'duplicate', dup.id, null, now);
      if (dup.mailbox === mailbox) return result(item.origin, 'duplicate', 'message-id-already-taken', null, false, null);
      return result(
        item.origin,
        'duplicate',
        'message-id-taken-in-another-mailbox',
        await records.refOf(dup.ticketId),
        false,
        null,
      );
    }

    const sender = msg.from?.address ?? '';
    const target = stage.replyTarget;
    const auth = stage.senderAuth ?? null;
    const flag = auth?.dmarc === 'fail' ? 'dmarc-fail' : null;
    // Staff answering about a ticket: never when a trusted MTA found the From forged.
    if (stage.staffMail && policy.staff && flag === null && cls.kind === 'request') {
      const ticket = await staffMailTicket(
        sp,
        records,
        msg,
        this.thread.referencesIn(msg.subject, policy.referencePrefixes),
        mailbox,
      );
      if (ticket !== null) {
        await sp.run('insert-raw', [msg.sha256, msg.size, item.raw, now]);
        const row = await insertInbound(records, ticket.id, mailbox, msg, 'staff-mail', messageId, now, false);
        await receipt(sp, item.origin, 'threaded', row, null, now);
        const reason = await applyStaffMail(sp, this.hooks, records, ticket, stage.staffMail, sender, policy, policy.staff, now);
        const refused = reason === 'staff-mail-refused' || reason === 'staff-answer-unknown';
        return result(item.origin, refused ? 'recorded' : 'threaded', reason, ticket.ref, false, null);
      }
    }
    // Every limit and the suppression list are about the address the reply would reach.
    const rcpt = target.ok ? target.address : null;
    const byReference: TicketSnapshot[] = [];
    for (const ref of this.thread.referencesIn(msg.subject, policy.referencePrefixes)) {
      const id = await records.ticketIdByRef(ref);
      const snap = id === null ? null : await snapshot(sp, records, id);
      if (snap) byReference.push(snap);
    }
    batch.autoReplies ??= await count(sp, 'auto-replies-since', [now - HOUR_MS]);
    const ctx: ThreadContext = {
      byMessageId: await ticketsByMessageIds(
        sp,
        records,
        cls.kind === 'bounce' && cls.bounce
          ? cls.bounce.originalMessageIds
          : [...msg.inReplyTo, ...msg.references.slice().reverse()],
        mailbox,
      ),
      byReference,
      acksLastHour: rcpt ? await count(sp, 'acks-to-since', [rcpt, now - HOUR_MS]) : 0,
      ticketsLastHour: rcpt ? await count(sp, 'tickets-acked-to-since', [rcpt, now - HOUR_MS]) : 0,
      senderSuppressed: rcpt ? (await sp.get('is-suppressed', [rcpt])) !== undefined : false,
      replyWithheld: flag ?? (target.ok ? null : target.reason),
      autoRepliesLastHour: batch.autoReplies,
      staffNoticeAnswered: cls.kind === 'bounce' ? null : await staffNoticeAnswered(sp, msg, mailbox),
      now,
    };
    const verdict = this.thread.decide(msg, cls, ctx, policy.rulesFor(mailbox));
    await sp.run('insert-raw', [msg.sha256, msg.size, item.raw, now]);

    switch (verdict.action) {
      case 'quarantine':
        return quarantine(sp, item, verdict.reason, now, await records.refOf(verdict.ticketId));
      case 'ignore': {
        const row = await insertInbound(records, null, mailbox, msg, cls.kind, messageId, now);
        await receipt(sp, item.origin, 'ignored', row, null, now);
        return result(item.origin, 'ignored', verdict.reason, null, false, null);
      }
      case 'record': {
        const row = await insertInbound(records, verdict.ticketId, mailbox, msg, cls.kind, messageId, now);
        let reason = verdict.reason;
        if (verdict.ticketId !== null) {
          if (cls.kind === 'bounce') {
            const { suppressed, refused } = await suppressBounced(sp, cls.bounce, now);
            // A bounce text may name other addresses in passing; only a report
            // that suppressed nothing and listed strangers is worth a look.
            if (suppressed.length === 0 && refused.length > 0) reason = 'bounce-not-our-recipient';
            await records.event(
              verdict.ticketId,
              'delivery-failure',
              false,
              { recipients: cls.bounce?.recipients ?? [], suppressed, refused },
              now,
            );
          } else {
            await records.event(verdict.ticketId, 'out-of-office', false, { from: sender }, now);
          }
          await sp.run('touch-ticket', [now, verdict.ticketId]);
        }
        await receipt(sp, item.origin, 'recorded', row, null, now);
        return result(item.origin, 'recorded', reason, await records.refOf(verdict.ticketId), false, null);
      }
      case 'thread': {
        const row = await insertInbound(records, verdict.ticketId, mailbox, msg, 'reply', messageId, now);
        await addParticipants(sp, verdict.ticketId, msg, policy);
        if (flag !== null) await recordUnauthenticated(sp, records, verdict.ticketId, flag, auth, now);
        if (verdict.newStatus) {
          batch.queue.delete(mailbox);
          await sp.run('update-ticket-status', { id: verdict.ticketId, status: verdict.newStatus, reason: null, now });
          await records.event(
            verdict.ticketId,
            verdict.reason === 'reopened' ? 'reopened' : 'status',
            true,
            { status: verdict.newStatus },
            now,
          );
        } else {
          await sp.run('touch-ticket', [now, verdict.ticketId]);
        }
        await this.hooks.afterTicketChange?.(
          sp,
          verdict.ticketId,
          verdict.reason === 'reopened' ? 'reopened' : 'customer-reply',
          now,
        );
        await receipt(sp, item.origin, 'threaded', row, null, now);
        return result(item.origin, 'threaded', verdict.reason, await records.refOf(verdict.ticketId), false, null);
      }
      case 'new-ticket': {
        const ticket = await createTicket(sp, records, mailbox, msg, verdict.linkTo, policy, now, stage.route ?? null);
        await sp.run('set-ticket-auto-reply', {
          id: ticket.id,
          ackTo: target.address ?? null,
          ackWithheld: verdict.ackSuppressedBy,
        });
        const row = await insertInbound(
          records,
          ticket.id,
          mailbox,
          msg,
          cls.kind === 'request' ? 'request' : cls.kind,
          messageId,
          now,
        );
        await records.event(ticket.id, 'received', true, {}, now);
        await this.hooks.afterTicketChange?.(sp, ticket.id, 'created', now);
        if (verdict.linkTo !== null)
          await records.event(ticket.id, 'linked', false, { to: await records.refOf(verdict.linkTo), why: verdict.reason }, now);
        if (flag !== null) await recordUnauthenticated(sp, records, ticket.id, flag, auth, now);
        let ackQueued = false;
        if (verdict.ackSuppressedBy === null && target.ok) {
          const to: Address = { address: target.address, name: target.name };
          const statusUrl = policy.statusUrl(await records.tokenFor(ticket.id, to.address, policy.links, now));
          const queuePosition = (await newTicketQueuePosition(records, batch, ticket))!;
          const draft = policy.composeAck({ ticket, to, inbound: msg, statusUrl, queuePosition });
          await records.queueOutbound(ticket.id, mailbox, draft, now);
          await records.event(ticket.id, 'acknowledged', true, {}, now);
          if (batch.autoReplies !== null) batch.autoReplies++;
          ackQueued = true;
        } else {
          await newTicketQueuePosition(records, batch, ticket, false);
          await records.event(ticket.id, 'ack-suppressed', false, { why: verdict.ackSuppressedBy }, now);
        }
        await notifyQueue(records, ticket, msg.text, policy, now);
        await receipt(sp, item.origin, 'taken', row, null, now);
        return result(item.origin, 'taken', verdict.ackSuppressedBy ?? verdict.reason, ticket.ref, ackQueued, null);
      }
    }
  }
}

/**
 * What a batch's rules read and decide on, for the engine to keep apart from
 * other batches committing at once (another mailbox on another node; see
 * TransactionLock): its mailboxes (the queue positions it counts on, the
 * cursor), its Message-IDs (a message copied to several mailboxes is one
 * ticket) and the addresses it would reply to (the per-sender limits).
 * Everything else a batch writes is its own new rows, or a ticket's row
 * updated in place; the hour's count of acknowledgements across every
 * mailbox is the one figure two batches may both read before either commits
 * (see docs/postgres.md).
 */
export function intakeKeys(items: readonly IntakeItem[]): string[] {
  const keys = new Set<string>();
  for (const item of items) {
    keys.add(`mailbox:${item.origin.mailbox}`);
    if (!item.stage.ok) continue;
    const msg = item.stage.message;
    keys.add(`message-id:${msg.messageId ?? `sha256:${msg.sha256}`}`);
    const target = item.stage.replyTarget;
    if (target.ok) keys.add(`reply-to:${target.address.toLowerCase()}`);
  }
  return [...keys];
}

/**
 * Suppresses the failed recipients of a delivery report, but only those a
 * message of ours went to: the report must name the Message-ID of an
 * outgoing message in this database (one ticketd generated), and the address
 * must be among that message's To or envelope recipients. Anyone can send a
 * report listing any address, so whatever else it lists is refused.
 */
async function suppressBounced(
  db: SqlSession,
  bounce: BounceInfo | null,
  now: number,
): Promise<{ suppressed: string[]; refused: string[] }> {
  const sentTo = new Set<string>();
  for (const id of bounce?.originalMessageIds ?? []) {
    for (const row of await db.all<{ toAddrs: string; envelopeTo: string | null }>('outbound-recipients', [id])) {
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
      await db.run('insert-suppression', [address, 'bounced', now]);
      suppressed.push(address);
    } else {
      refused.push(address);
    }
  }
  return { suppressed, refused };
}

/** A trusted MTA found the sender forged: the ticket is flagged and the finding kept as an internal event. */
async function recordUnauthenticated(
  db: SqlSession,
  records: TicketRecords,
  ticketId: number,
  flag: string,
  auth: SenderAuthentication | null,
  now: number,
): Promise<void> {
  await db.run('flag-ticket', [flag, ticketId]);
  await records.event(ticketId, 'sender-unauthenticated', false, { ...auth }, now);
}

async function quarantine(
  db: SqlSession,
  item: IntakeItem,
  reason: string,
  now: number,
  ref: string | null = null,
): Promise<IntakeResult> {
  const sha = item.stage.ok ? item.stage.message.sha256 : sha256Hex(item.raw);
  await db.run('insert-raw', [sha, item.raw.length, item.raw, now]);
  const id = (await db.get<{ id: number }>('insert-quarantine', [
    item.origin.mailbox,
    JSON.stringify(item.origin),
    sha,
    reason,
    now,
  ]))!.id;
  await receipt(db, item.origin, 'quarantined', null, id, now);
  return result(item.origin, 'quarantined', reason, ref, false, id);
}

async function receipt(
  db: SqlSession,
  origin: MessageOrigin,
  outcome: IntakeOutcome,
  messageRow: number | null,
  quarantineId: number | null,
  now: number,
): Promise<void> {
  if (origin.via !== 'imap') return;
  await db.run('insert-receipt', {
    mailbox: origin.mailbox,
    uidValidity: origin.uidValidity,
    uid: origin.uid,
    outcome,
    messageRow,
    quarantineId,
    now,
  });
  // Older UIDs may still wait in the folder behind one taken ahead of them: the receipt alone keeps it from being taken twice.
  if (origin.ahead !== true) {
    await db.run('upsert-cursor', { mailbox: origin.mailbox, uidValidity: origin.uidValidity, lastUid: origin.uid, now });
  }
}

async function ticketsByMessageIds(
  db: SqlSession,
  records: TicketRecords,
  ids: string[],
  mailbox: string,
): Promise<TicketSnapshot[]> {
  const seen = new Set<number>();
  const found: TicketSnapshot[] = [];
  for (const id of ids) {
    for (const row of await db.all<{ id: number }>('ticket-by-message-id', [id, mailbox])) {
      if (seen.has(row.id)) continue;
      seen.add(row.id);
      const snap = await snapshot(db, records, row.id);
      if (snap) found.push(snap);
    }
  }
  return found;
}

async function snapshot(db: SqlSession, records: TicketRecords, id: number): Promise<TicketSnapshot | null> {
  const t = await records.ticketRow(id);
  if (!t) return null;
  const participants = (await db.all<{ address: string }>('participants-of', [id])).map((p) => p.address);
  return { id, ref: t.ref, status: t.status, participants, closedAt: t.closedAt };
}

async function count(db: SqlSession, query: QueryName, params: unknown[]): Promise<number> {
  return (await db.get<{ n: number }>(query, params))!.n;
}

async function insertInbound(
  records: TicketRecords,
  ticketId: number | null,
  mailbox: string,
  msg: ParsedMessage,
  kind: string,
  messageId: string,
  now: number,
  isPublic = true,
): Promise<number> {
  return records.insertMessage({
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
    public: isPublic ? 1 : 0,
  });
}

/**
 * The queue position of a ticket just created by the intake transaction in
 * progress; called for every ticket it creates, `counted` false when nobody
 * needs the figure (then nothing is counted for it).
 */
async function newTicketQueuePosition(
  records: TicketRecords,
  batch: Batch,
  t: TicketRow,
  counted = true,
): Promise<number | null> {
  const last = batch.queue.get(t.mailbox);
  // Exact unless the clock stepped back between two messages of the batch.
  const follows = last !== undefined && t.createdAt >= last.createdAt;
  const position = follows ? last.position + 1 : counted ? await records.queuePosition(t) : null;
  if (position === null) batch.queue.delete(t.mailbox);
  else batch.queue.set(t.mailbox, { position, createdAt: t.createdAt });
  return position;
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

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

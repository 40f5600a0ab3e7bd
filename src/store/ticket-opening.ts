// Opening a ticket for a new request, inside the intake transaction: a free
// reference, the requester and everyone else on the mail as participants,
// the queue, priority and tags routing chose, and the notice to that queue's
// staff. intake.ts decides that a message opens a ticket and records the rest
// (the message, its acknowledgement, the receipt).

import type { ParsedMessage } from '../core/types.js';
import type { SqlSession } from './sql-engine.js';
import type { IntakePolicy, TicketRoute, TicketRow } from './store.js';
import type { TicketRecords } from './ticket-records.js';

export async function createTicket(
  db: SqlSession,
  records: TicketRecords,
  mailbox: string,
  msg: ParsedMessage,
  linkTo: number | null,
  policy: IntakePolicy,
  now: number,
  route: TicketRoute | null,
): Promise<TicketRow> {
  const requester = msg.from?.address ?? '';
  const replyTo = msg.replyTo[0]?.address ?? requester;
  for (let attempt = 0; ; attempt++) {
    const ref = policy.newReference(mailbox);
    if ((await records.ticketIdByRef(ref)) !== null) {
      // 30 bits of code: collisions are rare but possible on a busy desk.
      if (attempt < 20) continue;
      throw new Error('could not find a free reference');
    }
    const { id } = (await db.get<{ id: number }>('insert-ticket', {
      ref,
      mailbox,
      subject: msg.subject,
      requester,
      requesterName: msg.from?.name ?? '',
      replyTo,
      language: msg.language,
      linkedTo: linkTo,
      now,
    }))!;
    await db.run('insert-participant', [id, requester, 'requester']);
    await addParticipants(db, id, msg, policy);
    if (route !== null) {
      // Before the SLA engine first reads the ticket: the priority and the queue choose its policy.
      await db.run('set-ticket-route', {
        id,
        queue: route.queue,
        priority: route.priority ?? 'normal',
        tags: JSON.stringify(route.tags),
      });
      await records.event(
        id,
        'routed',
        false,
        { rule: route.rule, queue: route.queue, priority: route.priority, tags: route.tags },
        now,
      );
    }
    return (await records.ticketRow(id))!;
  }
}

export async function addParticipants(db: SqlSession, ticketId: number, msg: ParsedMessage, policy: IntakePolicy): Promise<void> {
  const own = new Set(policy.ownAddresses);
  if (msg.from && !own.has(msg.from.address)) await db.run('insert-participant', [ticketId, msg.from.address, 'cc']);
  for (const a of [...msg.cc, ...msg.to, ...msg.replyTo]) {
    if (!own.has(a.address)) await db.run('insert-participant', [ticketId, a.address, 'cc']);
  }
}

/** Tells the staff of a new ticket's queue about it; their answers to this notice come back as staff mail. */
export async function notifyQueue(
  records: TicketRecords,
  ticket: TicketRow,
  request: string,
  policy: IntakePolicy,
  now: number,
): Promise<void> {
  const recipients = policy.staff?.newTicketRecipients(ticket) ?? [];
  if (recipients.length === 0) return;
  const urls = new Map<string, string>();
  for (const r of recipients) urls.set(r, policy.statusUrl(await records.tokenFor(ticket.id, r, policy.links, now)));
  for (const draft of policy.staff!.composeNewTicketNotice(ticket, request, recipients, (r) => urls.get(r)!)) {
    await records.queueOutbound(ticket.id, ticket.mailbox, draft, now);
  }
}

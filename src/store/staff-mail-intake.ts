// Mail from staff about a ticket, inside the intake transaction (intake.ts
// records the message and its receipt, then hands it here): which ticket it
// is about, and what it does there. Commands at its top act (#note, #status,
// #assign, #resolve, #answer); text without commands goes to the requester
// as the agent reply.

import type { ParsedMessage } from '../core/types.js';
import type { SqlSession, SqlTransaction } from './sql-engine.js';
import type { IntakePolicy, RenderedAnswer, StaffMailPolicy, StaffReply, StoreHooks, TicketRow } from './store.js';
import { changeStatus, queueToRequester, reassign } from './ticket-commands.js';
import type { TicketRecords } from './ticket-records.js';

/** The ticket whose staff notice a message answers (its In-Reply-To or References names one), or null. */
export async function staffNoticeAnswered(db: SqlSession, msg: ParsedMessage, mailbox: string): Promise<number | null> {
  for (const id of [...msg.inReplyTo, ...msg.references]) {
    const row = await db.get<{ id: number }>('ticket-by-staff-notice-id', [id, mailbox]);
    if (row) return row.id;
  }
  return null;
}

/** The ticket a staff member's mail is about: the one its In-Reply-To or References name (a notice we sent), else its subject's reference. */
export async function staffMailTicket(
  sp: SqlTransaction,
  records: TicketRecords,
  msg: ParsedMessage,
  refs: string[],
  mailbox: string,
): Promise<TicketRow | null> {
  for (const id of [...msg.inReplyTo, ...msg.references.slice().reverse()]) {
    const row = (await sp.all<{ id: number }>('ticket-by-message-id', [id, mailbox]))[0];
    if (row) return records.ticketRow(row.id);
  }
  for (const ref of refs) {
    const t = await records.ticketByRef(ref);
    if (t) return t;
  }
  return null;
}

/**
 * What a staff member's mail does to its ticket: commands at its top act
 * (#note, #status, #assign, #resolve); without commands its new text goes to
 * the requester as the agent reply, threaded into their conversation and
 * counted as a response. A mail whose commands cannot all be read does
 * nothing; a command the ticket refuses (the status it already has, a
 * handoff without a note) is skipped, and when every command was refused
 * the text is not sent either: it was written to go with them (as
 * `tickets resolve` sends no reply for a ticket resolved already). Either
 * leaves an internal event saying why. Returns the intake reason.
 */
export async function applyStaffMail(
  sp: SqlTransaction,
  hooks: StoreHooks,
  records: TicketRecords,
  ticket: TicketRow,
  mail: StaffReply,
  sender: string,
  policy: IntakePolicy,
  staff: StaffMailPolicy,
  now: number,
): Promise<string> {
  const refuse = async (why: string[], reason = 'staff-mail-refused') => {
    await records.event(ticket.id, 'staff-mail-refused', false, { from: sender, why }, now);
    return reason;
  };
  if (mail.problems.length > 0) return refuse(mail.problems);
  // Answers are rendered before anything acts: an unknown one leaves the ticket as it was.
  const names = mail.commands.flatMap((c) => (c.kind === 'answer' ? [c.name] : []));
  const rendered = names.length > 0 ? staff.answers(ticket, names) : { ok: true as const, answers: [] };
  if (!rendered.ok) return refuse([`#answer: ${rendered.why}`], 'staff-answer-unknown');
  const reply: Reply = { body: mail.body, answers: rendered.answers, sender };
  const hasText = reply.body !== '' || reply.answers.length > 0;
  const acting = mail.commands.filter((c) => c.kind !== 'answer');
  if (acting.length === 0) {
    if (!hasText) return refuse(['no text above the quoted mail']);
    await relay(sp, hooks, records, ticket, reply, policy, staff, now);
    return 'staff-reply';
  }
  let t = ticket;
  const refused: string[] = [];
  for (const c of acting) {
    try {
      switch (c.kind) {
        case 'note':
          await records.event(t.id, 'note', false, { text: mail.body, by: sender }, now);
          break;
        case 'status':
          await changeStatus(sp, hooks, t, c.status, c.reason ?? undefined, now);
          break;
        case 'resolve':
          await changeStatus(sp, hooks, t, 'resolved', undefined, now);
          break;
        case 'assign': {
          const change = staff.assignTarget(c.target);
          if (change === null) refused.push(`#assign ${c.target}: no such queue or staff address`);
          else
            await reassign(sp, hooks, t, change, { note: c.note || null, by: sender, now, handoff: true }, (req) =>
              staff.notifyHandoff(req),
            );
          break;
        }
      }
    } catch (err) {
      // A refusal by the ticket's rules (same status, no note); anything else undoes the whole mail.
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('TICKETD_')) throw err;
      refused.push(`#${c.kind}: ${(err as Error).message}`);
    }
    t = (await records.ticketRow(t.id))!;
  }
  if (refused.length > 0) await records.event(t.id, 'staff-mail-refused', false, { from: sender, why: refused }, now);
  // With #status or #resolve alone, the text below is what the customer is told; with #note or #assign it is internal.
  const internal = acting.some((c) => c.kind === 'note' || c.kind === 'assign');
  const actedAtAll = refused.length < acting.length;
  if (!internal && hasText && actedAtAll) await relay(sp, hooks, records, t, reply, policy, staff, now);
  // Every resolution sends the customer one mail inviting a rating: the text above when it went to them, else this.
  else if (ticket.status !== 'resolved' && t.status === 'resolved')
    await queueToRequester(records, t, staff.composeResolved, policy, now);
  return 'staff-command';
}

/** What a staff mail sends the requester: its text, then its answers; and who wrote it. */
interface Reply {
  body: string;
  answers: readonly RenderedAnswer[];
  sender: string;
}

/**
 * The staff member's text to the requester, as an agent reply from the
 * command line would go; the reply to a ticket the mail resolved offers the
 * rating form.
 */
async function relay(
  sp: SqlTransaction,
  hooks: StoreHooks,
  records: TicketRecords,
  t: TicketRow,
  reply: Reply,
  policy: IntakePolicy,
  staff: StaffMailPolicy,
  now: number,
): Promise<void> {
  const ids = await records.threadIds(t.id);
  const statusUrl = policy.statusUrl(await records.tokenFor(t.id, t.replyTo, policy.links, now));
  await records.queueOutbound(
    t.id,
    t.mailbox,
    staff.composeReply(
      t,
      reply.body,
      reply.answers,
      statusUrl,
      { inReplyTo: ids.at(-1) ?? null, references: ids },
      { resolving: t.status === 'resolved' },
    ),
    now,
  );
  await sp.run('mark-first-response', { id: t.id, now });
  await records.event(t.id, 'reply', true, { by: reply.sender }, now);
  for (const a of reply.answers)
    await records.answerUsed(t.id, { name: a.name, lang: a.lang, by: reply.sender, via: 'mail' }, now);
  await hooks.afterTicketChange?.(sp, t.id, 'agent-reply', now);
}

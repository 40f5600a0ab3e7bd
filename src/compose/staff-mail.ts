import { DateTime } from 'luxon';
import type { QueueConfig } from '../config/load-config.js';
import { boundedText } from '../core/bounded-text.js';
import type { Address } from '../core/types.js';
import type { OutboundDraft } from '../core/types.js';
import type { HandoffNoticeRequest, HandoffRecord, TicketDetail, TicketRow } from '../store/store.js';
import { draftOf, echoedFields, type ComposeContext } from './compose-mail.js';

// Staff mail is mail to people, not an automatic reply to the customer, but
// it must never start a loop with another responder either.
const STAFF_HEADERS = { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'OOF, AutoReply' };

/** Each message of the story is cut here: the receiving side reads the start; the whole text is in `tickets show`. */
const STORY_MESSAGE_CHARS = 4000;
/** Message kinds the story tells: what the customer wrote and what we answered. */
const STORY_KINDS: ReadonlySet<string> = new Set(['request', 'reply', 'agent-reply']);
/** Internal events whose text is part of the story. */
const NOTE_EVENTS: ReadonlySet<string> = new Set(['note', 'assigned']);

/** Who hears of a queue's tickets: its group address, else each of its staff. */
export function queueRecipients(queue: QueueConfig | undefined): string[] {
  if (!queue) return [];
  return queue.notify !== undefined ? [queue.notify] : [...queue.staff];
}

/** Who a handoff notice goes to: the new owner when it went to a person, else the receiving queue. */
export function handoffRecipients(handoff: HandoffRecord, queue: QueueConfig | undefined): string[] {
  return handoff.toOwner !== null ? [handoff.toOwner] : queueRecipients(queue);
}

/**
 * The ticket so far, oldest first, as plain text for staff: each message the
 * customer wrote or we sent them, and each internal note, under a line with
 * its time (in the mailbox's zone) and who wrote it; `#note` marks what the
 * customer never saw. Built from addresses, times and symbols only, so it
 * reads the same inside a template of any language.
 */
export function ticketStory(detail: TicketDetail, timeZone: string | undefined): string {
  const at = (ms: number) => DateTime.fromMillis(ms, { zone: timeZone ?? 'utc' }).toFormat('yyyy-LL-dd HH:mm ZZ');
  const entries: { at: number; text: string }[] = [];
  for (const m of detail.messages) {
    if (!STORY_KINDS.has(m.kind) || !m.public) continue;
    const who = m.direction === 'in' ? m.from : `${m.from} → ${m.to.join(', ')}`;
    entries.push({
      at: Date.parse(m.date),
      text: `── ${at(Date.parse(m.date))} ── ${who}\n${boundedText(m.text.trim(), STORY_MESSAGE_CHARS)}`,
    });
  }
  for (const e of detail.events) {
    const text = e.detail.text;
    if (e.public || !NOTE_EVENTS.has(e.type) || typeof text !== 'string') continue;
    const by = typeof e.detail.by === 'string' ? ` ${e.detail.by}` : '';
    const handoff = e.detail.handoff as { to?: unknown } | undefined;
    const route = typeof handoff?.to === 'string' ? ` → ${handoff.to}` : '';
    entries.push({ at: e.at, text: `── ${at(e.at)} ── #note${by}${route}\n${boundedText(text.trim(), STORY_MESSAGE_CHARS)}` });
  }
  return entries
    .sort((a, b) => a.at - b.at)
    .map((e) => e.text)
    .join('\n\n');
}

/**
 * The notice a handoff sends the receiving side: to the new owner when it
 * went to a person, else to the queue. From the mailbox's own address, so an
 * answer comes back into the ticket; threaded under the staff mail sent
 * about this ticket before.
 */
export function composeHandoffNotice(
  ctx: ComposeContext,
  req: HandoffNoticeRequest,
  queue: QueueConfig | undefined,
  ticketUrl: (recipient: string) => string,
): OutboundDraft[] {
  const { ticket, handoff, detail } = req;
  const to = handoffRecipients(handoff, queue);
  if (to.length === 0) return [];
  const story = ticketStory(detail, ctx.mailbox.timezone);
  return to.map((address) => {
    const rendered = ctx.templates.render(
      'handoff-notice',
      {
        ref: ticket.ref,
        subject: echoedFields(ticket).subject,
        requester: requesterLine(ticket),
        from: handoff.fromOwner ?? handoff.fromQueue ?? '',
        to: handoff.toOwner ?? handoff.toQueue ?? '',
        by: handoff.by ?? '',
        note: handoff.note,
        handoffCount: detail.handoffs.length,
        story,
        mailboxAddress: ctx.mailbox.address,
        ticketUrl: ticketUrl(address),
      },
      { mailbox: ctx.mailbox.name, lang: ctx.mailbox.language, timeZone: ctx.mailbox.timezone },
    );
    return staffDraft(ctx, 'handoff-notice', { address, name: '' }, rendered, req.staffThread);
  });
}

/** Each recipient's notice of a new ticket in their queue; the first mail of the ticket's staff thread. */
export function composeNewTicketNotice(
  ctx: ComposeContext,
  ticket: TicketRow,
  request: string,
  recipients: readonly string[],
  ticketUrl: (recipient: string) => string,
): OutboundDraft[] {
  return recipients.map((address) => {
    const rendered = ctx.templates.render(
      'new-ticket-notice',
      {
        ref: ticket.ref,
        subject: echoedFields(ticket).subject,
        requester: requesterLine(ticket),
        queue: ticket.queue ?? '',
        request: boundedText(request.trim(), STORY_MESSAGE_CHARS),
        mailboxAddress: ctx.mailbox.address,
        ticketUrl: ticketUrl(address),
      },
      { mailbox: ctx.mailbox.name, lang: ctx.mailbox.language, timeZone: ctx.mailbox.timezone },
    );
    return staffDraft(ctx, 'new-ticket-notice', { address, name: '' }, rendered, []);
  });
}

function requesterLine(ticket: TicketRow): string {
  const { customerName } = echoedFields(ticket);
  return customerName ? `${customerName} <${ticket.requester}>` : ticket.requester;
}

function staffDraft(
  ctx: ComposeContext,
  kind: string,
  to: Address,
  rendered: { subject: string; text: string; html: string },
  thread: string[],
): OutboundDraft {
  return draftOf(ctx, kind, to, rendered, { inReplyTo: thread.at(-1) ?? null, references: thread.slice(-20) }, STAFF_HEADERS);
}

// The two mails the SLA engine sends: the delay notice to the customer and
// the warning to staff. Both are automatic, so both say so (RFC 3834).

import { composeToRequester, draftOf, echoedFields, type ComposeContext } from '../compose/compose-mail.js';
import type { TemplateVars } from '../compose/template-schema.js';
import type { TicketRow } from '../store/store.js';
import type { OutboundDraft } from '../core/types.js';

// auto-generated rather than auto-replied: the notice answers no message,
// a clock sent it. Exchange honours X-Auto-Response-Suppress.
const AUTO_GENERATED = { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' };

export function composeDelayNotice(
  ctx: ComposeContext,
  ticket: TicketRow,
  vars: Omit<TemplateVars<'delay-notice'>, 'ref' | 'subject' | 'customerName' | 'mailboxAddress'>,
  thread: { inReplyTo: string | null; references: string[] },
  to: string,
): OutboundDraft {
  return composeToRequester(
    ctx,
    'delay-notice',
    ticket,
    { ref: ticket.ref, ...echoedFields(ticket), mailboxAddress: ctx.mailbox.address, ...vars },
    thread,
    AUTO_GENERATED,
    { address: to, name: to === ticket.requester ? ticket.requesterName : '' },
  );
}

export function composeStaffWarning(
  ctx: ComposeContext,
  ticket: TicketRow,
  to: string,
  vars: Omit<TemplateVars<'staff-warning'>, 'ref' | 'subject' | 'requester'>,
): OutboundDraft {
  const rendered = ctx.templates.render(
    'staff-warning',
    {
      ref: ticket.ref,
      subject: ticket.subject,
      requester: ticket.requesterName ? `${ticket.requesterName} <${ticket.requester}>` : ticket.requester,
      ...vars,
    },
    // Staff read the mailbox's language, whatever the customer wrote in.
    { mailbox: ctx.mailbox.name, lang: ctx.mailbox.language, timeZone: ctx.mailbox.timezone },
  );
  // Not threaded into the customer's conversation: staff replies must not land there.
  return draftOf(ctx, 'staff-warning', { address: to, name: '' }, rendered, { inReplyTo: null, references: [] }, AUTO_GENERATED);
}

/** Where the ticket stands, as the delay notice's `status` key; the template words it. */
export function noticeStatus(ticket: TicketRow): TemplateVars<'delay-notice'>['status'] {
  if (ticket.status === 'on-hold') return 'on-hold';
  return ticket.firstResponseAt === null ? 'queued' : 'in-progress';
}

import { randomBytes } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import type { Config, MailboxConfig } from '../config/load-config.js';
import { smtpFor } from '../config/load-config.js';
import type { Address, ParsedMessage } from '../core/types.js';
import type { OutboundDraft, TicketRow } from '../store/store.js';
import type { TemplateRegistry } from './template-registry.js';
import type { TemplateKind, TemplateVars } from './template-schema.js';

/**
 * Our Message-IDs use a host name of their own under the support domain, so
 * mail that quotes one is recognisably ours and nobody else's mail program
 * produces the same right-hand side.
 */
export function messageIdDomain(mailbox: MailboxConfig): string {
  return `ticketd.${mailbox.address.split('@')[1]}`;
}

export function newMessageId(mailbox: MailboxConfig): string {
  return `${randomBytes(12).toString('hex')}@${messageIdDomain(mailbox)}`;
}

/** The sender of everything a mailbox sends: its own address, with the configured display name. */
export function senderOf(config: Config, mailbox: MailboxConfig): Address {
  const parsed = addressparser(smtpFor(config, mailbox).from)[0];
  const name = parsed && 'name' in parsed ? parsed.name : '';
  return { address: mailbox.address, name: name ?? '' };
}

export interface ComposeContext {
  config: Config;
  mailbox: MailboxConfig;
  templates: TemplateRegistry;
}

interface Threading {
  inReplyTo: string | null;
  references: string[];
}

/** Renders one kind of mail to a ticket's requester and wraps it as a queued draft. */
export function composeToRequester<K extends TemplateKind>(
  ctx: ComposeContext,
  kind: K,
  ticket: TicketRow,
  vars: TemplateVars<K>,
  thread: Threading,
  headers: Record<string, string>,
): OutboundDraft {
  const rendered = ctx.templates.render(kind, vars, {
    mailbox: ctx.mailbox.name,
    lang: ticket.language ?? ctx.mailbox.language,
    timeZone: ctx.mailbox.timezone,
  });
  return {
    kind,
    from: senderOf(ctx.config, ctx.mailbox),
    to: [{ address: ticket.replyTo, name: ticket.requesterName }],
    subject: rendered.subject,
    text: rendered.text,
    html: rendered.html,
    messageId: newMessageId(ctx.mailbox),
    inReplyTo: thread.inReplyTo,
    references: thread.references,
    headers,
  };
}

// RFC 3834: an automatic reply says so, and asks other responders (Exchange
// honours X-Auto-Response-Suppress) not to answer it, which stops loops.
const AUTO_REPLIED = { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' };

export function composeAck(
  ctx: ComposeContext,
  ticket: TicketRow,
  inbound: ParsedMessage,
  statusUrl: string,
  queuePosition: number,
  /** Milliseconds; 0 when no SLA applies. */
  firstResponseEstimate: number,
): OutboundDraft {
  const thread = inbound.messageId
    ? { inReplyTo: inbound.messageId, references: [...inbound.references, inbound.messageId] }
    : { inReplyTo: null, references: inbound.references };
  return composeToRequester(
    ctx,
    'ack',
    ticket,
    {
      ref: ticket.ref,
      subject: ticket.subject,
      customerName: ticket.requesterName,
      statusUrl,
      mailboxAddress: ctx.mailbox.address,
      firstResponseEstimate,
      queuePosition,
      receivedAt: new Date(ticket.createdAt).toISOString(),
    },
    thread,
    AUTO_REPLIED,
  );
}

export function composeAgentReply(ctx: ComposeContext, ticket: TicketRow, body: string, statusUrl: string, thread: Threading): OutboundDraft {
  return composeToRequester(
    ctx,
    'agent-reply',
    ticket,
    { ref: ticket.ref, subject: ticket.subject, customerName: ticket.requesterName, body, statusUrl, mailboxAddress: ctx.mailbox.address },
    thread,
    {},
  );
}

import { randomBytes } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import type { Config, MailboxConfig } from '../config/load-config.js';
import { smtpFor } from '../config/load-config.js';
import { boundedText } from '../core/bounded-text.js';
import type { Address, ParsedMessage } from '../core/types.js';
import type { TicketRow } from '../store/store.js';
import type { OutboundDraft } from '../core/types.js';
import type { AnswerLibrary } from './answer-library.js';
import type { TemplateRegistry } from './template-registry.js';
import type { AnswerVars, TemplateKind, TemplateVars } from './template-schema.js';

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

// RFC 3834 section 3.1 lets a response carry the subject "or a portion
// thereof"; a bound keeps a hostile subject (or name) from being sent on to
// whoever the reply reaches, in the subject or in the body.
const ECHOED_SUBJECT_CHARS = 200;
const ECHOED_NAME_CHARS = 100;

/** The customer's subject and name as our mails echo them back: bounded, whole graphemes. */
export function echoedFields(ticket: TicketRow): { subject: string; customerName: string } {
  return {
    subject: boundedText(ticket.subject, ECHOED_SUBJECT_CHARS),
    customerName: boundedText(ticket.requesterName, ECHOED_NAME_CHARS),
  };
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
  to: Address = { address: ticket.replyTo, name: ticket.requesterName },
): OutboundDraft {
  const rendered = ctx.templates.render(kind, vars, {
    mailbox: ctx.mailbox.name,
    lang: ticket.language ?? ctx.mailbox.language,
    timeZone: ctx.mailbox.timezone,
  });
  return draftOf(ctx, kind, to, rendered, thread, headers);
}

/** A rendered mail as a queued draft from the mailbox, with a Message-ID of its own. */
export function draftOf(
  ctx: ComposeContext,
  kind: string,
  to: Address,
  rendered: { subject: string; text: string; html: string },
  thread: Threading,
  headers: Record<string, string>,
): OutboundDraft {
  return {
    kind,
    from: senderOf(ctx.config, ctx.mailbox),
    to: [to],
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
// A mail not in answer to one (RFC 3834 section 5): the resolution notice.
const AUTO_GENERATED = { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' };

/** The acknowledgement of a new ticket, to the address the pipeline chose for automatic replies. */
export function composeAck(
  ctx: ComposeContext,
  ticket: TicketRow,
  to: Address,
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
      ...echoedFields(ticket),
      statusUrl,
      mailboxAddress: ctx.mailbox.address,
      firstResponseEstimate,
      queuePosition,
      receivedAt: new Date(ticket.createdAt).toISOString(),
    },
    thread,
    AUTO_REPLIED,
    to,
  );
}

/** Where the rating form of a status page is: the page itself, scrolled to the form. */
export function ratingUrlOf(statusUrl: string): string {
  return `${statusUrl}#rate`;
}

/**
 * The form with `score` already chosen: opening it changes nothing (the
 * status page only checks that score), the customer confirms with the form.
 */
export function scoreUrlOf(statusUrl: string, score: number): string {
  return `${statusUrl}?score=${score}#rate`;
}

type RatingLinks = Pick<
  TemplateVars<'resolved'>,
  'ratingUrl' | 'ratingUrl1' | 'ratingUrl2' | 'ratingUrl3' | 'ratingUrl4' | 'ratingUrl5'
>;

/** The rating form's links for a status page; all '' when the mail offers no rating. */
export function ratingLinksOf(statusUrl: string | null): RatingLinks {
  const score = (n: number) => (statusUrl === null ? '' : scoreUrlOf(statusUrl, n));
  return {
    ratingUrl: statusUrl === null ? '' : ratingUrlOf(statusUrl),
    ratingUrl1: score(1),
    ratingUrl2: score(2),
    ratingUrl3: score(3),
    ratingUrl4: score(4),
    ratingUrl5: score(5),
  };
}

/**
 * An agent reply. The reply that goes with a ticket's resolution (`resolving`)
 * carries the links to the rating form as well.
 */
export function composeAgentReply(
  ctx: ComposeContext,
  ticket: TicketRow,
  body: string,
  statusUrl: string,
  thread: Threading,
  opts: { resolving?: boolean } = {},
): OutboundDraft {
  return composeToRequester(
    ctx,
    'agent-reply',
    ticket,
    {
      ref: ticket.ref,
      ...echoedFields(ticket),
      body,
      statusUrl,
      ...ratingLinksOf(opts.resolving ? statusUrl : null),
      mailboxAddress: ctx.mailbox.address,
    },
    thread,
    {},
  );
}

/**
 * The resolution mail when staff resolve without a last reply: says so and
 * invites a rating, threaded into the customer's conversation. It is sent
 * because of what staff did, not in answer to a mail, hence auto-generated.
 */
export function composeResolved(ctx: ComposeContext, ticket: TicketRow, statusUrl: string, thread: Threading): OutboundDraft {
  return composeToRequester(
    ctx,
    'resolved',
    ticket,
    {
      ref: ticket.ref,
      ...echoedFields(ticket),
      statusUrl,
      ...ratingLinksOf(statusUrl),
      mailboxAddress: ctx.mailbox.address,
    },
    thread,
    AUTO_GENERATED,
  );
}

/** What an answer of the library may say of the ticket it answers. */
export function answerVarsOf(mailbox: MailboxConfig, ticket: TicketRow): AnswerVars {
  return { ref: ticket.ref, ...echoedFields(ticket), mailboxAddress: mailbox.address };
}

/** Renders the answers named for a ticket, in its language; the first unknown one refuses them all. */
export function renderAnswers(
  answers: AnswerLibrary,
  mailbox: MailboxConfig,
  ticket: TicketRow,
  names: readonly string[],
): { ok: true; answers: { name: string; text: string; lang: string | null }[] } | { ok: false; why: string } {
  const out: { name: string; text: string; lang: string | null }[] = [];
  for (const name of names) {
    const r = answers.render(name, answerVarsOf(mailbox, ticket), ticket.language ?? mailbox.language);
    if (!r.ok) return r;
    out.push({ name: r.name, text: r.text, lang: r.lang });
  }
  return { ok: true, answers: out };
}

/** The reply's text: what the staff member wrote (as written), then each answer, a blank line between. */
export function withAnswers(text: string, answers: readonly { text: string }[]): string {
  if (answers.length === 0) return text;
  return [text.trim(), ...answers.map((a) => a.text)].filter((p) => p !== '').join('\n\n');
}

import type { Classification, MessageKind, ParsedMessage } from '../core/types.js';
import { extractBounce, isBounce, isSesFeedback, isSystemSender } from './bounce.js';
import { FEEDBACK_SUBJECT, MACHINE_HEADERS } from './machine-rules.js';

export interface ClassifyContext {
  /** Mailboxes this installation sends from, lower-case. */
  ownAddresses: string[];
  /** Domains this installation generates Message-IDs under, lower-case. */
  ownMessageIdDomains: string[];
}

const BULK_PRECEDENCE = new Set(['bulk', 'list', 'junk']);

// Vacation subjects as Outlook, Exchange, Lotus Notes and common webmailers
// write them in the languages we see: the phrase must be followed by a colon
// (or end the subject), which tells "Out of Office: <subject>" from a person
// writing "Out of office tomorrow, please cover".
const OOO_SUBJECT =
  /^\s*(?:automatic reply|automatische antwort|auto[- ]?reply|out of (?:the )?office(?: auto[- ]?reply)?|abwesenheitsnotiz|réponse automatique|autosvar|automatisk svar|respuesta automática|risposta automatica|resposta automática|automatisch antwoord)\s*(?::|$)/i;
// "Auto:" (Lotus Notes) is also the German word for car, so it only counts on mail already marked automatic.
const WEAK_OOO_SUBJECT = /^\s*auto:/i;
// Vacation texts whose subject is just "Re: <original subject>" (Gmail, many webmailers).
const OOO_BODY =
  /\b(?:out of (?:the )?office|on (?:vacation|holiday|annual leave|parental leave|leave)\b|away from (?:the )?office|nicht im (?:büro|hause)|im urlaub|abwesend|en (?:vacances|congés?)|absente? du bureau|fuera de la oficina|de vacaciones|fuori ufficio|in ferie|på semester|afwezig)/i;
const OOO_BODY_SCAN_CHARS = 4000;

function values(msg: ParsedMessage, name: string): string[] {
  return msg.headers.get(name) ?? [];
}

/** The token before any `;` parameters, lower-cased (`auto-replied; owner-email=...` -> `auto-replied`). */
function token(value: string): string {
  return (value.split(';')[0] ?? '').trim().toLowerCase();
}

function autoSubmitted(msg: ParsedMessage): boolean {
  return values(msg, 'auto-submitted').some((value) => token(value) !== 'no');
}

function bulkPrecedence(msg: ParsedMessage): string | undefined {
  return values(msg, 'precedence')
    .map(token)
    .find((value) => BULK_PRECEDENCE.has(value));
}

function listMail(msg: ParsedMessage): boolean {
  return [...msg.headers.keys()].some((name) => name.startsWith('list-'));
}

function autoResponseSuppress(msg: ParsedMessage): boolean {
  return values(msg, 'x-auto-response-suppress').some((value) => value.trim().toLowerCase() !== 'none');
}

function xAutoreply(msg: ParsedMessage): boolean {
  return msg.headers.has('x-autoreply') || msg.headers.has('x-autorespond');
}

/** The first machine-only header the message carries, as its reason. */
function machineHeader(msg: ParsedMessage): string | undefined {
  return MACHINE_HEADERS.find((rule) => msg.headers.has(rule.header))?.reason;
}

/**
 * An abuse or spam complaint about mail we sent: an RFC 5965 feedback
 * report, an SES complaint notification, or the older Hotmail format (a
 * complaint subject with the reported message enclosed).
 */
function feedbackReport(msg: ParsedMessage): boolean {
  if (msg.report?.reportType === 'feedback-report') return true;
  if (isSesFeedback(msg)) return true;
  return FEEDBACK_SUBJECT.test(msg.subject) && msg.attachments.some((a) => a.contentType === 'message/rfc822');
}

function ownAddress(msg: ParsedMessage, ctx: ClassifyContext): boolean {
  return msg.from !== null && ctx.ownAddresses.includes(msg.from.address);
}

function ownMessageId(msg: ParsedMessage, ctx: ClassifyContext): boolean {
  const at = msg.messageId?.lastIndexOf('@') ?? -1;
  return at >= 0 && ctx.ownMessageIdDomains.includes((msg.messageId ?? '').slice(at + 1).toLowerCase());
}

function isOutOfOffice(msg: ParsedMessage): boolean {
  if (xAutoreply(msg)) return true;
  if (values(msg, 'precedence').some((value) => token(value) === 'auto_reply')) return true;
  if (OOO_SUBJECT.test(msg.subject)) return true;
  const markedAutomatic = autoSubmitted(msg) || autoResponseSuppress(msg);
  return markedAutomatic && (WEAK_OOO_SUBJECT.test(msg.subject) || OOO_BODY.test(msg.text.slice(0, OOO_BODY_SCAN_CHARS)));
}

function isAutomatic(msg: ParsedMessage, ctx: ClassifyContext): boolean {
  return (
    autoSubmitted(msg) ||
    bulkPrecedence(msg) !== undefined ||
    listMail(msg) ||
    msg.headers.has('x-loop') ||
    ownAddress(msg, ctx) ||
    ownMessageId(msg, ctx) ||
    isSystemSender(msg) ||
    machineHeader(msg) !== undefined ||
    feedbackReport(msg) ||
    // Reports other than DSNs (read receipts, abuse feedback) are machine-made too.
    msg.report !== null
  );
}

function kindOf(msg: ParsedMessage, ctx: ClassifyContext): MessageKind {
  if (isBounce(msg)) return 'bounce';
  if (isOutOfOffice(msg)) return 'out-of-office';
  if (isAutomatic(msg, ctx)) return 'auto-reply';
  return 'request';
}

/**
 * Why no automatic reply may be sent, or null. The first matching rule wins,
 * so the order decides which reason gets recorded when several apply:
 * - The null envelope sender comes first: MTAs set it (RFC 5321 section 4.5.5,
 *   RFC 3834 section 2) and it is the one marker a message author cannot forget.
 * - MAILER-DAEMON/postmaster in From (or Return-Path) is the same system mail
 *   when the envelope was lost on the way (a pipe delivery without Return-Path).
 * - A feedback report (RFC 5965, or a provider's own complaint format) is a
 *   machine relaying a complaint, whoever it names as sender.
 * - Auto-Submitted is the RFC 3834 marker the sender declared itself.
 * - Then the older conventions, from the most to the least widely honoured:
 *   Precedence, RFC 2369/2919 List-* headers, Microsoft's
 *   X-Auto-Response-Suppress, X-Autoreply/X-Autorespond, the other headers
 *   only machines write (machine-rules.ts: inbox rules, list servers,
 *   provider notifications) and X-Loop.
 * - Our own loop guards follow the sender's markers, so a log line names the
 *   sender's reason when there is one; they still stop our own mail whose
 *   markers were stripped by a forwarder.
 * - No From at all only says there is nobody to answer, the weakest reason.
 */
function suppressReason(msg: ParsedMessage, ctx: ClassifyContext): string | null {
  if (msg.returnPath === '') return 'null-sender';
  if (isSystemSender(msg)) return 'mailer-daemon';
  if (feedbackReport(msg)) return 'feedback-report';
  if (autoSubmitted(msg)) return 'auto-submitted';
  const precedence = bulkPrecedence(msg);
  if (precedence !== undefined) return `precedence-${precedence}`;
  if (listMail(msg)) return 'list-mail';
  if (autoResponseSuppress(msg)) return 'auto-response-suppress';
  if (xAutoreply(msg)) return 'x-autoreply';
  const header = machineHeader(msg);
  if (header !== undefined) return header;
  if (msg.headers.has('x-loop')) return 'x-loop';
  if (ownAddress(msg, ctx)) return 'own-address';
  if (ownMessageId(msg, ctx)) return 'own-message-id';
  if (msg.from === null) return 'no-sender';
  return null;
}

/**
 * Decides what a message is and whether RFC 3834 (and our loop rules) allow
 * an automatic reply to it. Pure: everything comes from the message and `ctx`.
 */
export function classify(msg: ParsedMessage, ctx: ClassifyContext): Classification {
  const kind = kindOf(msg, ctx);
  // Anything recognised as machine-made is never answered, even when none of
  // the header rules above fired (a vacation reply recognised by its subject only).
  const reason = suppressReason(msg, ctx) ?? (kind === 'request' ? null : kind);
  return {
    kind,
    mayAutoReply: reason === null,
    suppressReason: reason,
    bounce: kind === 'bounce' ? extractBounce(msg) : null,
  };
}

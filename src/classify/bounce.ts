import { isDeliveryFailure, type DeliveryRecipient } from '../core/delivery-status.js';
import type { Address, BounceInfo, ParsedMessage } from '../core/types.js';
import { parseMessageIds, readFields } from '../core/header-fields.js';
import { BOUNCE_SUBJECTS, NOREPLY_LOCAL_PART, SYSTEM_LOCAL_PART } from './machine-rules.js';

export { isDeliveryFailure, type DeliveryRecipient };

// Parts in which a report returns the message it is about, or its status.
const RETURNED_PART_TYPES = new Set([
  'message/delivery-status',
  'message/global-delivery-status',
  'message/rfc822',
  'message/global',
  'text/rfc822-headers',
  'message/global-headers',
]);
// An SMTP reply quoted in a bounce text: a 4xx/5xx code followed by an
// enhanced status code or words about the recipient.
const SMTP_FAILURE =
  /\b[45]\d\d[ -]+(?:#?[45]\.\d{1,3}\.\d{1,3}\b|[^\n]{0,80}\b(?:user|mailbox|recipient|address|rejected|unknown|denied|refused|quota|full)\b)/i;
const BODY_SCAN_CHARS = 8000;

function localPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : address.slice(0, at);
}

/** True for the MAILER-DAEMON and postmaster mailboxes that MTAs send their reports from. */
export function isMailerDaemon(from: Address | null): boolean {
  return from !== null && SYSTEM_LOCAL_PART.test(localPart(from.address));
}

/** True for noreply@-style addresses: a sign of machine mail, but not enough on its own. */
export function isNoReply(from: Address | null): boolean {
  return from !== null && NOREPLY_LOCAL_PART.test(localPart(from.address));
}

/**
 * The null envelope sender (in Return-Path, or written as `From: <>` by
 * gateways that copy it there), or a mail system's own mailbox in From or
 * Return-Path.
 */
export function isSystemSender(msg: ParsedMessage): boolean {
  if (msg.returnPath === '' || isMailerDaemon(msg.from)) return true;
  if (msg.returnPath !== null && SYSTEM_LOCAL_PART.test(localPart(msg.returnPath))) return true;
  return (msg.headers.get('from') ?? []).some((value) => value.trim() === '<>');
}

/** The message returns another one or its delivery status: enclosed, quoted headers, or an SMTP failure. */
function returnsOriginal(msg: ParsedMessage): boolean {
  if (msg.attachments.some((a) => RETURNED_PART_TYPES.has(a.contentType))) return true;
  if (msg.headers.has('x-failed-recipients')) return true;
  const text = msg.text.slice(0, BODY_SCAN_CHARS);
  return SMTP_FAILURE.test(text) || /^[>\s]*(?:received|message-id|return-path):/im.test(text);
}

/**
 * The JSON of an Amazon SES notification delivered through SNS, with the
 * escaping undone that SNS adds when it wraps the notification in its own
 * JSON envelope; null for other mail.
 */
function sesNotification(msg: ParsedMessage): string | null {
  return msg.headers.has('x-amz-sns-message-id') ? msg.text.replace(/\\"/g, '"') : null;
}

function sesNotificationType(msg: ParsedMessage): string | null {
  const json = sesNotification(msg);
  return json === null ? null : (/"notificationType"\s*:\s*"(\w+)"/.exec(json)?.[1]?.toLowerCase() ?? null);
}

/** An SES bounce or complaint notification: feedback about mail we sent. */
export function isSesFeedback(msg: ParsedMessage): boolean {
  return sesNotificationType(msg) === 'complaint';
}

/**
 * A delivery status notification: a standard RFC 3464 report, an Amazon SES
 * bounce notification, or mail from a system sender (null envelope,
 * MAILER-DAEMON, postmaster) or a noreply address that has a bounce subject
 * or returns the original message. Other reports (read receipts, feedback)
 * are not bounces whoever sends them.
 */
export function isBounce(msg: ParsedMessage): boolean {
  const reportType = msg.report?.reportType ?? '';
  if (reportType === 'delivery-status') return true;
  if (reportType !== '') return false;
  if (sesNotificationType(msg) === 'bounce') return true;
  const system = isSystemSender(msg);
  if (!system && !isNoReply(msg.from)) return false;
  if (BOUNCE_SUBJECTS.some((rule) => rule.pattern.test(msg.subject))) return true;
  if (msg.contentType === 'multipart/report') return true;
  return system ? returnsOriginal(msg) : msg.attachments.some((a) => RETURNED_PART_TYPES.has(a.contentType));
}

/** `rfc822; Jane@Example.org` -> `jane@example.org`; null for other address types. */
function typedAddress(value: string | undefined): string | null {
  if (value === undefined) return null;
  const semicolon = value.indexOf(';');
  const type = semicolon < 0 ? 'rfc822' : value.slice(0, semicolon).trim().toLowerCase();
  const address = value
    .slice(semicolon + 1)
    .trim()
    .replace(/^<|>$/g, '')
    .toLowerCase();
  return type === 'rfc822' && address !== '' ? address : null;
}

/**
 * Per-recipient fields of a message/delivery-status body (RFC 3464 section
 * 2.3): blocks separated by empty lines, the first one being per-message.
 * Original-Recipient is preferred, being the address the message was sent to
 * before any forwarding.
 */
export function parseDeliveryStatus(text: string): DeliveryRecipient[] {
  const recipients: DeliveryRecipient[] = [];
  for (const block of text.split(/\r?\n[ \t]*\r?\n/)) {
    const fields = new Map(readFields(block).map((field) => [field.name, field.value]));
    const address = typedAddress(fields.get('original-recipient')) ?? typedAddress(fields.get('final-recipient'));
    if (address === null) continue;
    const status = fields.get('status') ?? '';
    recipients.push({
      address,
      action: (fields.get('action') ?? '').toLowerCase(),
      status: /\d\.\d{1,3}\.\d{1,3}/.exec(status)?.[0] ?? status,
      diagnostic: (fields.get('diagnostic-code') ?? '').replace(/\s+/g, ' '),
    });
  }
  return recipients;
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}

function originalMessageIds(msg: ParsedMessage): string[] {
  if (msg.report?.originalHeaders) {
    const fromHeaders = readFields(msg.report.originalHeaders)
      .filter((field) => field.name === 'message-id')
      .flatMap((field) => parseMessageIds(field.value));
    if (fromHeaders.length > 0) return unique(fromHeaders);
  }
  const fromThread = [...msg.inReplyTo, ...msg.references];
  if (fromThread.length > 0) return unique(fromThread);
  // Non-standard bounces quote the returned message inline, headers included
  // (possibly indented or quoted with `>`).
  const quoted = [...msg.text.matchAll(/^[>\s]*message-id:[ \t]*(?:\r?\n[ \t]+)?(<[^<>\s]+>|[^<>\s]+@[^<>\s]+)/gim)];
  return unique(quoted.flatMap((match) => parseMessageIds(match[1] ?? '')));
}

/**
 * Recipients and Message-ID of an SES bounce notification. Its JSON is read
 * field by field because SNS wraps long lines, which breaks the document
 * for a JSON parser.
 */
function sesBounce(msg: ParsedMessage): BounceInfo {
  const json = sesNotification(msg) ?? '';
  const permanent = /"bounceType"\s*:\s*"Permanent"/.test(json);
  const recipients: DeliveryRecipient[] = [];
  const list = /"bouncedRecipients"\s*:\s*\[([^\]]*)\]/.exec(json)?.[1] ?? '';
  for (const entry of list.match(/\{[^{}]*\}/g) ?? []) {
    const field = (name: string) => new RegExp(`"${name}"\\s*:\\s*"([^"]*)"`).exec(entry)?.[1] ?? '';
    const address = field('emailAddress').trim().toLowerCase();
    if (address === '') continue;
    recipients.push({
      address,
      action: field('action') || (permanent ? 'failed' : 'delayed'),
      status: field('status'),
      diagnostic: field('diagnosticCode'),
    });
  }
  const ids = [...json.matchAll(/"name"\s*:\s*"Message-ID"\s*,\s*"value"\s*:\s*"([^"]*)"/gi)].flatMap((m) =>
    parseMessageIds(m[1] ?? ''),
  );
  return { originalMessageIds: unique(ids), recipients };
}

const ADDRESS = /[a-z0-9._%+'=-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/gi;
// Where a bounce text stops and the returned message (or its headers) starts.
const RETURNED_MESSAGE_START = /^[>\s]*(?:received|return-path|message-id|dkim-signature):/im;
// Delay notices say the MTA keeps trying; anything else in a bounce text is a failure.
const DELAY_NOTICE = /\bdelayed\b|\bwarning\b|not yet been delivered|will (?:continue|keep) trying|will be retried|\(delay\)/i;

/**
 * Addresses a bounce without a machine-readable report names in its text,
 * before the returned message: most MTAs write the failed recipient there
 * in a format of their own. The store suppresses only those a message of
 * ours was sent to, so an address named in passing costs nothing.
 */
function noticeRecipients(msg: ParsedMessage): DeliveryRecipient[] {
  const text = msg.text.slice(0, BODY_SCAN_CHARS);
  const start = text.search(RETURNED_MESSAGE_START);
  const notice = start < 0 ? text : text.slice(0, start);
  const action = DELAY_NOTICE.test(msg.subject) || DELAY_NOTICE.test(notice) ? 'delayed' : 'failed';
  const sender = msg.from?.address ?? '';
  const addresses = unique((notice.match(ADDRESS) ?? []).map((address) => address.toLowerCase()));
  return addresses
    .filter((address) => address !== sender && !SYSTEM_LOCAL_PART.test(localPart(address)))
    .map((address) => ({ address, action, status: '', diagnostic: '' }));
}

/**
 * What bounced and for whom: recipients come from the report, else Exim's
 * X-Failed-Recipients, else the addresses the bounce text names.
 */
export function extractBounce(msg: ParsedMessage): BounceInfo {
  if (sesNotificationType(msg) === 'bounce') return sesBounce(msg);
  let recipients = msg.report?.deliveryStatus ? parseDeliveryStatus(msg.report.deliveryStatus) : [];
  if (recipients.length === 0) {
    recipients = (msg.headers.get('x-failed-recipients') ?? [])
      .flatMap((value) => value.split(','))
      .map((address) => address.trim().replace(/^<|>$/g, '').toLowerCase())
      .filter((address) => address !== '')
      .map((address) => ({ address, action: 'failed', status: '', diagnostic: '' }));
  }
  if (recipients.length === 0) recipients = noticeRecipients(msg);
  return { originalMessageIds: originalMessageIds(msg), recipients };
}

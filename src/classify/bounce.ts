import type { Address, BounceInfo, ParsedMessage } from '../core/types.js';
import { parseMessageIds, readFields } from '../parse/header-values.js';

export type DeliveryRecipient = BounceInfo['recipients'][number];

const SYSTEM_LOCAL_PARTS = new Set(['mailer-daemon', 'postmaster']);

// Subjects of the bounces MTAs send without a machine-readable report
// (qmail, older Exim and Exchange setups, mailbox providers' own formats).
const BOUNCE_SUBJECT =
  /^\s*(undelivered mail returned to sender|undeliver(?:ed|able)\b|delivery status notification \((?:failure|delay)\)|mail delivery (?:failed|failure)|returned mail\b|delivery failure|failure notice|non[- ]?delivery|message delivery failure|delayed mail|unzustellbar|nicht zustellbar|non remis|no se puede entregar)/i;

function localPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : address.slice(0, at);
}

/** True for the MAILER-DAEMON and postmaster mailboxes that MTAs send their reports from. */
export function isMailerDaemon(from: Address | null): boolean {
  return from !== null && SYSTEM_LOCAL_PARTS.has(localPart(from.address).toLowerCase());
}

/**
 * A delivery status notification: a standard RFC 3464 report, or a system
 * sender (null envelope, MAILER-DAEMON, postmaster) with a bounce subject.
 */
export function isBounce(msg: ParsedMessage): boolean {
  if (msg.report?.reportType === 'delivery-status') return true;
  const systemSender = msg.returnPath === '' || isMailerDaemon(msg.from);
  return systemSender && BOUNCE_SUBJECT.test(msg.subject);
}

/** Only a failed action or a permanent (5.x.x) status means the address does not work. */
export function isDeliveryFailure(recipient: DeliveryRecipient): boolean {
  return recipient.action === 'failed' || recipient.status.startsWith('5.');
}

/** `rfc822; Jane@Example.org` -> `jane@example.org`; null for other address types. */
function typedAddress(value: string | undefined): string | null {
  if (value === undefined) return null;
  const semicolon = value.indexOf(';');
  const type = semicolon < 0 ? 'rfc822' : value.slice(0, semicolon).trim().toLowerCase();
  const address = value.slice(semicolon + 1).trim().replace(/^<|>$/g, '').toLowerCase();
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

/** What bounced and for whom; recipients come from the report or, failing that, Exim's X-Failed-Recipients. */
export function extractBounce(msg: ParsedMessage): BounceInfo {
  let recipients = msg.report?.deliveryStatus ? parseDeliveryStatus(msg.report.deliveryStatus) : [];
  if (recipients.length === 0) {
    recipients = (msg.headers.get('x-failed-recipients') ?? [])
      .flatMap((value) => value.split(','))
      .map((address) => address.trim().replace(/^<|>$/g, '').toLowerCase())
      .filter((address) => address !== '')
      .map((address) => ({ address, action: 'failed', status: '', diagnostic: '' }));
  }
  return { originalMessageIds: originalMessageIds(msg), recipients };
}

import type { AutoReplyTarget, ParsedMessage } from '../core/types.js';

export interface ReplyRecipientContext {
  /** Every mailbox address and alias of this installation, lower-case. */
  ownAddresses: readonly string[];
}

// Local parts that say nobody reads the mailbox (noreply, do-not-reply), that
// MTAs send their reports from (RFC 5321 postmaster, MAILER-DAEMON), or that
// RFC 3834 section 2 names as responders' return addresses of mailing lists
// (owner-*, *-request). Compared with case and the separators _ . - removed,
// so No_Reply, do.not.reply and Mailer_Daemon are the same words.
const ROBOT_WORDS = new Set(['noreply', 'donotreply', 'mailerdaemon', 'postmaster']);
const ROBOT_PREFIXES = ['noreply', 'donotreply'];

/** The local part without a `+tag` subaddress, lower-cased. */
function baseLocalPart(local: string): string {
  const plus = local.indexOf('+');
  return (plus > 0 ? local.slice(0, plus) : local).toLowerCase();
}

/** True for local parts of mailboxes that are machines, never a person who could read an acknowledgement. */
export function isRobotLocalPart(local: string): boolean {
  const base = baseLocalPart(local);
  if (base.startsWith('owner-') || base.endsWith('-request')) return true;
  const word = base.replace(/[-_.]/g, '');
  return ROBOT_WORDS.has(word) || ROBOT_PREFIXES.some((prefix) => word.startsWith(prefix));
}

/** `support+billing@Example.com` -> `support@example.com`, for comparing with our own addresses. */
function withoutSubaddress(address: string): string {
  const at = address.lastIndexOf('@');
  return `${baseLocalPart(address.slice(0, at))}@${address.slice(at + 1).toLowerCase()}`;
}

// A routable domain: dot-separated labels of letters, digits and hyphens
// (an internationalised name counts as its letters), at least two labels.
const DOMAIN = /^(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$/u;
// Printable, no white space or brackets; non-ASCII letters pass (SMTPUTF8 mailboxes).
const LOCAL_PART = /^[^\s\p{Cc}<>()[\]\\,;:@"]{1,64}$/u;

/** Why an address cannot receive an automatic reply, or null when it can. */
export function unfitReplyAddress(address: string, ctx: ReplyRecipientContext): string | null {
  const at = address.lastIndexOf('@');
  if (at < 0 || at === address.length - 1) return 'recipient-no-domain';
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  // `root@localhost` is as undeliverable from outside as a bare `root`.
  if (!domain.includes('.')) return 'recipient-no-domain';
  if (!LOCAL_PART.test(local) || !DOMAIN.test(domain)) return 'recipient-invalid';
  const own = new Set(ctx.ownAddresses.map((a) => a.toLowerCase()));
  if (own.has(withoutSubaddress(address))) return 'recipient-own-address';
  if (isRobotLocalPart(local)) return 'recipient-robot';
  return null;
}

/**
 * Where an automatic reply to this message goes, or why it goes nowhere.
 *
 * RFC 3834 section 4: an automatic response generated after delivery goes to
 * the Return-Path, the envelope sender the final MTA recorded. That is the
 * address SPF vouches for and the one the sender's own systems take bounces
 * at; Reply-To and From are text the author writes and no MTA checks, which
 * is what let anyone aim acknowledgements at a victim. Reply-To is never used
 * for an automatic reply (a person answering still uses it). Only when the
 * message carries no Return-Path at all (a folder filled by a mail program
 * or a script rather than by delivery) does the reply go to From, the author
 * address DMARC authenticates. Pure: everything comes from the message and `ctx`.
 */
export function autoReplyTarget(msg: ParsedMessage, ctx: ReplyRecipientContext): AutoReplyTarget {
  // RFC 3834 section 2: never respond to the null address.
  if (msg.returnPath === '') return { ok: false, reason: 'null-sender' };
  const fromReturnPath = msg.returnPath !== null;
  const address = (fromReturnPath ? msg.returnPath : msg.from?.address) ?? '';
  if (address === '') return { ok: false, reason: 'recipient-missing' };
  const unfit = unfitReplyAddress(address, ctx);
  if (unfit !== null) return { ok: false, reason: unfit, address };
  // The author's display name belongs with the reply only when it goes to the author's address.
  const name = msg.from?.address === address ? msg.from.name : '';
  return { ok: true, address, name, source: fromReturnPath ? 'return-path' : 'from' };
}

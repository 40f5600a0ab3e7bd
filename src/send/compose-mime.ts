import MailComposer from 'nodemailer/lib/mail-composer';
import { boundedText } from '../core/bounded-text.js';
import type { OutboundDraft } from '../core/types.js';

// RFC 5322 section 3.6.4 sets no limit on References, but every id of it is
// repeated in each reply, so a long thread (or a forged header) would grow
// without end. Like news software and most mail programs we keep the first id
// (the thread's root) and the most recent ones.
const REFERENCES_KEPT_LAST = 9;
// No id longer than this is echoed: an unbreakable token longer than the
// 998-octet line limit of RFC 5322 section 2.1.1 cannot be folded.
const MAX_MESSAGE_ID_CHARS = 250;
// msg-id of RFC 5322 section 3.6.4: printable US-ASCII without white space or
// brackets on each side of one `@`. Anything else (8-bit, control characters,
// a malformed id) is not echoed at all rather than repaired.
const MESSAGE_ID = /^[!-;=?-~]+@[!-;=?-~]+$/;
// C0 and C1 control characters, DEL and line/paragraph separators: never in
// a header we write (nodemailer would pass an ESC or BEL in ASCII text through).
const CONTROL = /[\p{Cc}\u2028\u2029]+/gu;
// A display name is one word to nodemailer when it has no spaces; a bound
// keeps such a name inside the line limit.
const MAX_NAME_CHARS = 100;
// Every kind of mail echoes the customer's subject; the compose stage already
// shortens it, this keeps any template's result within the line limit.
const MAX_SUBJECT_CHARS = 300;

/** True for an id we may echo in In-Reply-To or References. */
export function isEchoableMessageId(id: string): boolean {
  return id.length <= MAX_MESSAGE_ID_CHARS && MESSAGE_ID.test(id) && id.indexOf('@') === id.lastIndexOf('@');
}

/** The References we write: valid ids only, the first and the last few, no repeats. */
export function boundedReferences(ids: readonly string[]): string[] {
  const valid = [...new Set(ids.filter(isEchoableMessageId))];
  if (valid.length <= REFERENCES_KEPT_LAST + 1) return valid;
  return [valid[0]!, ...valid.slice(-REFERENCES_KEPT_LAST)];
}

/** Header text with control characters and line breaks turned into single spaces. */
export function headerText(text: string): string {
  return text.replace(CONTROL, ' ').replace(/ {2,}/g, ' ').trim();
}

/**
 * Builds the MIME message for a queued draft; the result is stored before the
 * first send attempt. nodemailer folds structured headers and writes non-ASCII
 * text as RFC 2047 encoded words; what it cannot fold or would pass through
 * raw (over-long or 8-bit ids, control characters) is removed here first.
 */
export async function composeMime(draft: OutboundDraft, date: Date): Promise<Buffer> {
  const inReplyTo = draft.inReplyTo !== null && isEchoableMessageId(draft.inReplyTo) ? draft.inReplyTo : null;
  const references = boundedReferences(draft.references);
  const composer = new MailComposer({
    from: { name: headerText(draft.from.name), address: draft.from.address },
    to: draft.to.map((a) => ({ name: boundedText(headerText(a.name), MAX_NAME_CHARS), address: a.address })),
    subject: boundedText(headerText(draft.subject), MAX_SUBJECT_CHARS),
    text: draft.text,
    ...(draft.html !== null ? { html: draft.html } : {}),
    messageId: `<${draft.messageId}>`,
    ...(inReplyTo ? { inReplyTo: `<${inReplyTo}>` } : {}),
    ...(references.length ? { references: references.map((r) => `<${r}>`) } : {}),
    headers: Object.fromEntries(Object.entries(draft.headers).map(([name, value]) => [name, headerText(value)])),
    date,
    // Bodies and headers come from our templates and from customer data
    // rendered as text; nothing may pull in files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return composer.compile().build();
}

import MailComposer from 'nodemailer/lib/mail-composer';
import type { OutboundDraft } from '../store/store.js';

/** Builds the MIME message for a queued draft; the result is stored before the first send attempt. */
export async function composeMime(draft: OutboundDraft, date: Date): Promise<Buffer> {
  const composer = new MailComposer({
    from: { name: draft.from.name, address: draft.from.address },
    to: draft.to.map((a) => ({ name: a.name, address: a.address })),
    subject: draft.subject,
    text: draft.text,
    ...(draft.html !== null ? { html: draft.html } : {}),
    messageId: `<${draft.messageId}>`,
    ...(draft.inReplyTo ? { inReplyTo: `<${draft.inReplyTo}>` } : {}),
    ...(draft.references.length ? { references: draft.references.map((r) => `<${r}>`) } : {}),
    headers: draft.headers,
    date,
    // Bodies and headers come from our templates and from customer data
    // rendered as text; nothing may pull in files or URLs.
    disableFileAccess: true,
    disableUrlAccess: true,
  });
  return composer.compile().build();
}

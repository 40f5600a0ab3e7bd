// An intake item as the pipeline hands it to the store (the raw mail parsed,
// classified and given its reply target), for tests that feed a store
// directly instead of through a mail source.

import { classify } from '../../src/classify/classify.js';
import { autoReplyTarget } from '../../src/classify/reply-recipient.js';
import type { MessageOrigin } from '../../src/core/types.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import type { IntakeItem } from '../../src/store/store.js';

export async function intakeItem(
  raw: string,
  o: {
    origin: MessageOrigin;
    attachmentsDir: string;
    /** The installation's own addresses; support@example.com unless given. */
    ownAddresses?: string[];
    maxAttachmentBytes?: number;
    /**
     * A mail that does not parse is a failed stage, which the store
     * quarantines; set where every mail is meant to parse, so that a broken
     * fixture fails loudly instead.
     */
    mustParse?: boolean;
  },
): Promise<IntakeItem> {
  const own = o.ownAddresses ?? ['support@example.com'];
  const parsed = await parseMessage(Buffer.from(raw), {
    attachmentsDir: o.attachmentsDir,
    maxAttachmentBytes: o.maxAttachmentBytes ?? 1e6,
  });
  if (!parsed.ok) {
    if (o.mustParse) throw new Error(parsed.reason);
    return { origin: o.origin, raw: Buffer.from(raw), stage: { ok: false, reason: parsed.reason } };
  }
  return {
    origin: o.origin,
    raw: Buffer.from(raw),
    stage: {
      ok: true,
      message: parsed.message,
      classification: classify(parsed.message, { ownAddresses: own, ownMessageIdDomains: ['ticketd.example.com'] }),
      replyTarget: autoReplyTarget(parsed.message, { ownAddresses: own }),
    },
  };
}

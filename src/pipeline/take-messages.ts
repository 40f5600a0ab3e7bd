import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/logger.js';
import type { MessageOrigin } from '../core/types.js';
import { classify } from '../classify/classify.js';
import { autoReplyTarget } from '../classify/reply-recipient.js';
import { senderAuthentication } from '../classify/sender-auth.js';
import { parseMessage } from '../parse/parse-message.js';
import type { IntakeItem, IntakePolicy, IntakeResult, Store } from '../store/store.js';

/** What every source (IMAP, pipe, LMTP, quarantine retry) needs to hand mail to the pipeline. */
export interface Pipeline {
  store: Store;
  /** Read on every batch, so a SIGHUP reload takes effect at the next one. */
  policy: () => IntakePolicy;
  logger: Logger;
  dataDir: string;
  limits: { maxMessageBytes: number; maxAttachmentBytes: number };
  /** Own addresses and Message-ID domains, for loop prevention. */
  ownAddresses: readonly string[];
  ownMessageIdDomains: readonly string[];
  /** authserv-ids whose Authentication-Results count (`authentication.trustedAuthservIds`); none when absent. */
  trustedAuthservIds?: readonly string[];
  /** Called once per result, after the commit (metrics). */
  onResult?: (r: IntakeResult) => void;
}

export interface RawMail {
  origin: MessageOrigin;
  /** The message, or only its first bytes when it was over the size cap. */
  raw: Buffer;
  /** Size the server reported, when the source checked it before download. */
  declaredSize?: number;
}

/** Parse and classify one message; never throws (a failure becomes a quarantine verdict). */
export async function prepare(p: Pipeline, mail: RawMail): Promise<IntakeItem> {
  const size = Math.max(mail.declaredSize ?? 0, mail.raw.length);
  if (size > p.limits.maxMessageBytes) {
    return { origin: mail.origin, raw: mail.raw, stage: { ok: false, reason: `too-large: ${size} bytes > ${p.limits.maxMessageBytes}` } };
  }
  try {
    const parsed = await parseMessage(mail.raw, {
      attachmentsDir: join(p.dataDir, 'attachments'),
      maxAttachmentBytes: p.limits.maxAttachmentBytes,
    });
    if (!parsed.ok) return { origin: mail.origin, raw: mail.raw, stage: { ok: false, reason: parsed.reason } };
    const classification = classify(parsed.message, {
      ownAddresses: [...p.ownAddresses],
      ownMessageIdDomains: [...p.ownMessageIdDomains],
    });
    const replyTarget = autoReplyTarget(parsed.message, { ownAddresses: p.ownAddresses });
    const senderAuth = senderAuthentication(parsed.message, { trustedAuthservIds: p.trustedAuthservIds ?? [] });
    return { origin: mail.origin, raw: mail.raw, stage: { ok: true, message: parsed.message, classification, replyTarget, senderAuth } };
  } catch (err) {
    return { origin: mail.origin, raw: mail.raw, stage: { ok: false, reason: `stage-error: ${(err as Error).message}` } };
  }
}

/**
 * Takes a batch: parse and classify each message, then commit the whole
 * batch in one transaction. Only after this returns may a source move, flag
 * or acknowledge the messages.
 */
export async function takeMessages(p: Pipeline, mails: RawMail[]): Promise<IntakeResult[]> {
  if (mails.length === 0) return [];
  const started = performance.now();
  const items: IntakeItem[] = [];
  for (const mail of mails) items.push(await prepare(p, mail));
  const results = await p.store.takeBatch(items, p.policy());
  const ms = Math.round(performance.now() - started);
  for (const r of results) {
    const o = r.origin;
    const fields = {
      mailbox: o.mailbox,
      via: o.via,
      ...(o.via === 'imap' ? { uid: o.uid, uidValidity: o.uidValidity } : {}),
      action: r.outcome,
      reason: r.reason,
      ref: r.ref,
      ack: r.ackQueued,
      batch: results.length,
      ms,
    };
    if (r.outcome === 'quarantined') p.logger.warn({ code: 'MSG_QUARANTINED', quarantineId: r.quarantineId, ...fields }, 'message quarantined');
    else p.logger.info({ code: 'MSG_TAKEN', ...fields }, 'message taken');
    p.onResult?.(r);
  }
  // A flood shows as many tickets with one reason; one line says the cap held.
  const capped = results.filter((r) => r.reason === 'auto-reply-cap');
  if (capped.length > 0) {
    p.logger.warn({ code: 'AUTO_REPLY_CAP_REACHED', mailbox: capped[0]!.origin.mailbox, withheld: capped.length }, 'hourly cap on automatic replies reached');
  }
  return results;
}

import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/logger.js';
import type { MessageOrigin } from '../core/types.js';
import { classify } from '../classify/classify.js';
import { autoReplyTarget } from '../classify/reply-recipient.js';
import { routeMessage, type RouteInput, type RouteRule } from '../classify/route.js';
import { senderAuthentication } from '../classify/sender-auth.js';
import { readStaffReply } from '../classify/staff-reply.js';
import { inThreadParser, type MessageParser } from '../parse/parse-pool.js';
import { STAFF_NOTICE_ANSWER } from '../thread/decide-thread.js';
import type { IntakeItem, IntakeOutcome, IntakePolicy, IntakeResult, IntakeStore, MailboxCursors } from '../store/store.js';
import { AttachmentStaging } from './attachment-staging.js';

/** What every source (IMAP, pipe, LMTP, quarantine retry) needs to hand mail to the pipeline. */
export interface Pipeline {
  /** The intake and, for the IMAP worker, the mailbox cursors: all a source needs of the store. */
  store: IntakeStore & MailboxCursors;
  /** Read on every batch (before its transaction), so a SIGHUP reload takes effect at the next one. */
  policy: () => IntakePolicy | Promise<IntakePolicy>;
  logger: Logger;
  dataDir: string;
  limits: { maxMessageBytes: number; maxAttachmentBytes: number };
  /** Own addresses and Message-ID domains, for loop prevention. */
  ownAddresses: readonly string[];
  ownMessageIdDomains: readonly string[];
  /** authserv-ids whose Authentication-Results count (`authentication.trustedAuthservIds`); none when absent. */
  trustedAuthservIds?: readonly string[];
  /** Whether an address is staff (in some queue's `staff`): their mail to a ticket is read for commands. */
  isStaff?: (address: string) => boolean;
  /** The routing rules that place a new ticket of a mailbox; no routing when absent. */
  routing?: (mailbox: string) => { input: RouteInput; rules: readonly RouteRule[] };
  /** Where messages are parsed: the daemon's worker threads, else the calling thread. */
  parser?: MessageParser;
  /** Deadline of one parse (default 30 s); past it the message is quarantined as `parse-timeout`. */
  parseTimeoutMs?: number;
  /** Called once per result, after the commit (metrics). */
  onResult?: (r: IntakeResult) => void;
}

/** What the daemon gives its pipeline when it makes it: parsing on worker threads, and what follows each commit. */
export type PipelineHooks = Pick<Pipeline, 'parser' | 'onResult'>;

export interface RawMail {
  origin: MessageOrigin;
  /** The message, or only its first bytes when it was over the size cap. */
  raw: Buffer;
  /** Size the server reported, when the source checked it before download. */
  declaredSize?: number;
}

/** An item ready for the store, and the attachment folder it holds until the commit decided. */
export interface Prepared {
  item: IntakeItem;
  attachmentsDir: string | null;
}

/** Outcomes that store the message, and so keep its attachment files. */
const KEEPS_ATTACHMENTS: ReadonlySet<IntakeOutcome> = new Set(['taken', 'threaded', 'recorded', 'ignored']);

/** Parse and classify one message; never throws (a failure becomes a quarantine verdict). */
export async function prepare(
  p: Pipeline,
  mail: RawMail,
  staging = new AttachmentStaging(join(p.dataDir, 'attachments')),
): Promise<Prepared> {
  const size = Math.max(mail.declaredSize ?? 0, mail.raw.length);
  const failed = (reason: string): Prepared => ({
    item: { origin: mail.origin, raw: mail.raw, stage: { ok: false, reason } },
    attachmentsDir: null,
  });
  if (size > p.limits.maxMessageBytes) return failed(`too-large: ${size} bytes > ${p.limits.maxMessageBytes}`);
  const dir = staging.newStagingDir();
  try {
    // Mail taken ahead of a backlog is not parsed after the batch already fetched behind it.
    const ahead = mail.origin.via === 'imap' && mail.origin.ahead === true;
    const parsed = await (p.parser ?? inThreadParser).parse(
      mail.raw,
      {
        attachmentsDir: dir,
        maxAttachmentBytes: p.limits.maxAttachmentBytes,
        ...(p.parseTimeoutMs !== undefined && { timeoutMs: p.parseTimeoutMs }),
      },
      ahead,
    );
    if (!parsed.ok) {
      await staging.discard(dir);
      return failed(parsed.reason);
    }
    const published = await staging.publish(dir, parsed.message.sha256, parsed.message.attachments);
    const message = published ? { ...parsed.message, attachments: published.records } : parsed.message;
    try {
      const classification = classify(message, {
        ownAddresses: [...p.ownAddresses],
        ownMessageIdDomains: [...p.ownMessageIdDomains],
      });
      const replyTarget = autoReplyTarget(message, { ownAddresses: p.ownAddresses });
      const senderAuth = senderAuthentication(message, { trustedAuthservIds: p.trustedAuthservIds ?? [] });
      // Decided for every message, applied only if it opens a ticket (the store knows that).
      const routing = p.routing?.(mail.origin.mailbox);
      const route = routing ? routeMessage(message, routing.input, routing.rules) : null;
      return {
        item: {
          origin: mail.origin,
          raw: mail.raw,
          stage: {
            ok: true,
            message,
            classification,
            replyTarget,
            senderAuth,
            route: route && { rule: route.rule, queue: route.queue, priority: route.priority, tags: route.tags },
            staffMail: message.from && p.isStaff?.(message.from.address) ? readStaffReply(message.text) : null,
          },
        },
        attachmentsDir: published?.dir ?? null,
      };
    } catch (err) {
      if (published) await staging.release(published.dir, false);
      throw err;
    }
  } catch (err) {
    await staging.discard(dir).catch(() => undefined);
    return failed(`stage-error: ${(err as Error).message}`);
  }
}

/** A batch parsed and classified, waiting for its commit; see parseBatch. */
export interface ParsedBatch {
  items: Promise<Prepared[]>;
  /** Gives up a batch that will not be committed: its attachment files are deleted. */
  discard(): Promise<void>;
  /** After the commit: keeps the attachment files of the messages stored, deletes the others'. */
  settle(results: readonly IntakeResult[]): Promise<void>;
}

/**
 * Starts parsing and classifying a batch. A source that fetches ahead (IMAP)
 * calls this as soon as the mail is in hand, so the next batch is parsed on
 * the worker threads while this one commits; takeMessages does it otherwise.
 */
export function parseBatch(p: Pipeline, mails: RawMail[]): ParsedBatch {
  const staging = new AttachmentStaging(join(p.dataDir, 'attachments'));
  const items = (async () => {
    // The pool parses as many at once as it has threads, in order of arrival.
    if (p.parser) return Promise.all(mails.map((mail) => prepare(p, mail, staging)));
    const prepared: Prepared[] = [];
    for (const mail of mails) prepared.push(await prepare(p, mail, staging));
    return prepared;
  })();
  // Each message's folder is kept only when the commit stored the message.
  const release = async (kept: (i: number) => boolean) => {
    await Promise.all(
      (await items).map((x, i) => (x.attachmentsDir === null ? undefined : staging.release(x.attachmentsDir, kept(i)))),
    );
  };
  return {
    items,
    discard: () => release(() => false),
    settle: (results) => release((i) => KEEPS_ATTACHMENTS.has(results[i]?.outcome ?? 'quarantined')),
  };
}

/**
 * Takes a batch: parse and classify each message (or use the `parsed` batch
 * begun with parseBatch), then commit the whole batch in one transaction.
 * Only after this returns may a source move, flag or acknowledge the
 * messages. Attachment files of messages not stored (duplicates,
 * quarantined) are deleted after the commit.
 */
export async function takeMessages(
  p: Pipeline,
  mails: RawMail[],
  parsed: ParsedBatch = parseBatch(p, mails),
): Promise<IntakeResult[]> {
  if (mails.length === 0) return [];
  const started = performance.now();
  const prepared = await parsed.items;
  let results: IntakeResult[];
  try {
    const policy = await p.policy();
    results = await p.store.takeBatch(
      prepared.map((x) => x.item),
      policy,
    );
  } catch (err) {
    await parsed.discard();
    throw err;
  }
  await parsed.settle(results);
  const ms = Math.round(performance.now() - started);
  for (const [i, r] of results.entries()) {
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
    if (r.outcome === 'quarantined')
      p.logger.warn({ code: 'MSG_QUARANTINED', quarantineId: r.quarantineId, ...fields }, 'message quarantined');
    else p.logger.info({ code: 'MSG_TAKEN', ...fields }, 'message taken');
    if (r.outcome === 'quarantined' && r.reason === STAFF_NOTICE_ANSWER) {
      const stage = prepared[i]!.item.stage;
      // What the operator needs to decide: who answered, about which ticket.
      p.logger.warn(
        {
          code: 'STAFF_NOTICE_ANSWER_QUARANTINED',
          mailbox: o.mailbox,
          from: stage.ok ? (stage.message.from?.address ?? null) : null,
          ref: r.ref,
          quarantineId: r.quarantineId,
        },
        'an answer to a staff notice from an address not trusted as staff was quarantined',
      );
    }
    p.onResult?.(r);
  }
  // A flood shows as many tickets with one reason; one line says the cap held.
  const capped = results.filter((r) => r.reason === 'auto-reply-cap');
  if (capped.length > 0) {
    p.logger.warn(
      { code: 'AUTO_REPLY_CAP_REACHED', mailbox: capped[0]!.origin.mailbox, withheld: capped.length },
      'hourly cap on automatic replies reached',
    );
  }
  return results;
}

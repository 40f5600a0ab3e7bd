// The outbox as a queue of rows: claimed with a lease, kept composed so a
// retry sends the same bytes, marked sent (and its status links redacted),
// retried or failed; what `ticketd outbox` lists and requeues.

import type { Address } from '../core/types.js';
import { StatusLinks } from '../core/status-links.js';
import { sha256Hex } from './intake.js';
import type { SqlEngine, SqlSession } from './sql-engine.js';
import type { OutboxCounts, OutboxEntry, OutboxQueue } from './store.js';
import type { OutboxJob } from '../outbox/outbox-claims.js';

export class SqlOutboxQueue implements OutboxQueue {
  constructor(private readonly engine: SqlEngine) {}

  /**
   * The due queries lock the rows they return (SKIP LOCKED on PostgreSQL), so
   * claims need no other lock. A claim lost to a power cut leaves its rows
   * due, which is where a restart would find them anyway: it does not wait
   * for the disk.
   */
  claimOutbox(now: number, limit: number, leaseMs: number, fresh = 0, claimant: string | null = null): Promise<OutboxJob[]> {
    return this.engine.transaction(
      async (tx) => {
        // The newest never-tried rows first, then the oldest due ones. Leasing
        // moves a row's next attempt past `now`, so the second query cannot
        // return what the first one took.
        const rows = await tx.all<DueRow>('due-outbox-fresh', [now, Math.min(fresh, limit)]);
        // The lease keeps a second worker (or a restart) from sending the same
        // row while this one is still talking to the server.
        for (const r of rows) await tx.run('lease-outbox', { until: now + leaseMs, claimant, id: r.id });
        const oldest = limit > rows.length ? await tx.all<DueRow>('due-outbox', { now, limit: limit - rows.length }) : [];
        for (const r of oldest) await tx.run('lease-outbox', { until: now + leaseMs, claimant, id: r.id });
        // Interleaved, so the send order within a claim favours neither end.
        const both: DueRow[] = [];
        for (let i = 0; i < Math.max(rows.length, oldest.length); i++)
          both.push(...[rows[i], oldest[i]].filter((r) => r !== undefined));
        return both.map(toOutboxJob);
      },
      'rows',
      'engine',
    );
  }

  saveOutboundRaw(items: { messageRow: number; raw: Buffer }[], now: number): Promise<void> {
    return this.engine.transaction(async (tx) => {
      for (const { messageRow, raw } of items) {
        const sha = sha256Hex(raw);
        await tx.run('insert-raw', [sha, raw.length, raw, now]);
        await tx.run('set-message-raw', [sha, messageRow]);
      }
    }, 'rows');
  }

  /**
   * Row updates by id under the worker's claim, so no other lock: a sent mark
   * must not wait behind another node's long transaction, as every moment
   * between the server's acceptance and this commit is a mail sent twice if
   * the node is killed. For the same reason it only marks: the status links
   * are redacted by redactSentMail, in a transaction of its own. The commit
   * does not wait for the disk: a killed process keeps it all the same, and
   * a mark lost to a power cut only sends its mail again.
   */
  markOutboxSent(ids: number[], now: number): Promise<void> {
    return this.engine.transaction(
      async (tx) => {
        for (const id of ids) await tx.run('outbox-sent', [now, id]);
      },
      'rows',
      'engine',
    );
  }

  /**
   * Redacts up to `limit` sent mails still flagged (see redactSentStatusLinks);
   * how many it did. One lost to a power cut leaves its rows flagged, and the
   * outbox redacts what is flagged when it starts.
   */
  redactSentMail(limit: number): Promise<number> {
    return this.engine.transaction(
      async (tx) => {
        const rows = await tx.all<{ id: number }>('outbox-redact-pending', [limit]);
        for (const { id } of rows) {
          await redactSentStatusLinks(tx, id);
          await tx.run('outbox-redacted', [id]);
        }
        return rows.length;
      },
      'rows',
      'engine',
    );
  }

  releaseOutbox(ids: number[], now: number): Promise<void> {
    return this.engine.transaction(
      async (tx) => {
        for (const id of ids) await tx.run('outbox-release', [now, id]);
      },
      'rows',
      'engine',
    );
  }

  async markOutboxRetry(id: number, nextAttemptAt: number, error: string): Promise<void> {
    await this.engine.run('outbox-retry', [nextAttemptAt, error, id]);
  }

  async markOutboxFailed(id: number, error: string, now: number): Promise<void> {
    await this.engine.run('outbox-failed', [error, now, id]);
  }

  async listOutbox(filter: { failedOnly?: boolean; id?: number } = {}): Promise<OutboxEntry[]> {
    const rows = await this.engine.all<RawOutboxEntry>('list-outbox', {
      id: filter.id ?? null,
      failed: filter.failedOnly ? 1 : 0,
    });
    return rows.map((r) => ({ ...r, envelopeTo: JSON.parse(r.envelopeTo) as string[] }));
  }

  async requeueOutbox(which: { id: number } | 'failed', now: number): Promise<number[]> {
    const rows = await this.engine.all<{ id: number }>('outbox-requeue', { id: which === 'failed' ? null : which.id, now });
    return rows.map((r) => r.id);
  }

  async outboxCounts(): Promise<OutboxCounts> {
    const counts: OutboxCounts = { pending: 0, failed: 0, sent: 0 };
    for (const r of await this.engine.all<{ status: keyof OutboxCounts; n: number }>('outbox-counts')) counts[r.status] = r.n;
    return counts;
  }
}

/**
 * Once a mail is sent its status links are needed no more: the token in the
 * stored text and HTML becomes `/t/[redacted]` (staff still see where the
 * link was), and the sent bytes are dropped. Only strings that hash to one of
 * the ticket's tokens are touched.
 */
async function redactSentStatusLinks(db: SqlSession, outboxId: number): Promise<void> {
  const mail = await db.get<{ id: number; ticketId: number | null; text: string; html: string | null; rawSha: string | null }>(
    'sent-mail-for-redaction',
    [outboxId],
  );
  if (!mail || mail.ticketId === null) return;
  const link = /\/t\/([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/g;
  const candidates = new Set([...`${mail.text}\n${mail.html ?? ''}`.matchAll(link)].map((m) => m[1]!));
  const tokens = new Set<string>();
  for (const token of candidates)
    if (await db.get('ticket-token-known', [StatusLinks.hash(token), mail.ticketId])) tokens.add(token);
  if (tokens.size === 0) return;
  const redact = (body: string) => body.replace(link, (match, token: string) => (tokens.has(token) ? '/t/[redacted]' : match));
  const text = redact(mail.text);
  const html = mail.html === null ? null : redact(mail.html);
  await db.run('redact-sent-mail', { text, html, id: mail.id });
  if (mail.rawSha !== null) await db.run('drop-unused-raw', { sha: mail.rawSha });
}

interface DueRow {
  id: number;
  messageRow: number;
  mailbox: string;
  envelopeFrom: string;
  envelopeTo: string;
  attempts: number;
  kind: string;
  headers: string;
  subject: string;
  text: string;
  html: string | null;
  messageId: string;
  fromAddr: string;
  toAddrs: string;
  raw: Buffer | null;
}

type RawOutboxEntry = Omit<OutboxEntry, 'envelopeTo'> & { envelopeTo: string };

function toOutboxJob(r: DueRow): OutboxJob {
  const h = JSON.parse(r.headers) as Record<string, unknown>;
  const { inReplyTo, references, fromName, ...headers } = h;
  return {
    id: r.id,
    messageRow: r.messageRow,
    mailbox: r.mailbox,
    kind: r.kind,
    envelopeFrom: r.envelopeFrom,
    envelopeTo: JSON.parse(r.envelopeTo) as string[],
    attempts: r.attempts + 1,
    raw: r.raw,
    draft: {
      kind: r.kind,
      from: { address: r.fromAddr, name: (fromName as string | undefined) ?? '' },
      to: JSON.parse(r.toAddrs) as Address[],
      subject: r.subject,
      text: r.text,
      html: r.html,
      messageId: r.messageId,
      inReplyTo: (inReplyTo as string | null | undefined) ?? null,
      references: (references as string[] | undefined) ?? [],
      headers: headers as Record<string, string>,
    },
  };
}

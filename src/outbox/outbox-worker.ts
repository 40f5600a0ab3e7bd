import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { Wakeup } from '../core/wakeup.js';
import { composeMime } from '../send/compose-mime.js';
import { SendError, classifySendError, type Mailer } from '../send/mailer.js';
import type { OutboxClaims, OutboxJob } from './outbox-claims.js';
import { InDoubtLimit } from './in-doubt.js';
import type { RetrySchedule } from './retry-schedule.js';

export interface OutboxWorkerOptions {
  store: OutboxClaims;
  mailerFor: (mailbox: string) => Mailer;
  schedule: RetrySchedule;
  logger: Logger;
  clock: Clock;
  pollIntervalMs: number;
  /** Rows claimed at most at once. */
  batchSize: number;
  /** Sends in flight at once: the SMTP pool's connections, so none waits in the pool's own queue. Read again as it goes, so a reload applies. */
  concurrency: () => number;
  /**
   * Mails at most in doubt at once (see InDoubtLimit): their end sent to the
   * server, their sent mark not yet committed; what a kill can send twice.
   * Read again as it goes, so a reload applies. Unbounded when absent.
   */
  maxInDoubt?: () => number;
  /** How long a claimed row stays invisible to other workers; longer than any send deadline. */
  leaseMs: number;
  /** The node's incarnation, named in every claim so a claim dies with the node's heartbeat. */
  claimant?: string | null | undefined;
  /** Asked just before each send; false means the row was withdrawn (an SLA notice that no longer holds) and is skipped. */
  stillValid?: (job: OutboxJob) => boolean | Promise<boolean>;
}

export interface OutboxPass {
  sent: number;
  retrying: number;
  failed: number;
  withdrawn: number;
}

/** Sent mails redacted per transaction: a busy outbox's marks of a moment, without holding the database long. */
const REDACT_BATCH = 50;
/**
 * How long the marks of sent mail gather before a redaction pass: a busy
 * outbox then redacts a batch per transaction, where a pass per mark cost a
 * transaction per mail (4,716 for 5,000 mails drained).
 */
const REDACT_DELAY_MS = 100;

/**
 * Sends what the outbox holds, several rows at once. A row is marked sent
 * only after the server accepted the message; a crash in between sends it
 * again once the claim lapses, with its node's heartbeat or its lease (at
 * least once: SMTP offers nothing stronger), never loses it. The sent mail's
 * status links are redacted after the mark, so the mark stays short.
 *
 * Rows are claimed up to `batchSize` at a time and fed to `concurrency`
 * send slots as they free up, rather than in passes that wait for their
 * slowest send: a server that stalls until the deadline holds up one slot,
 * not the queue. Each claim gives half its rows to the newest mail never
 * tried and half to the oldest due (see `OutboxClaims.claimOutbox`): a fresh
 * acknowledgement goes out with the next claim however long the backlog,
 * and the backlog still drains in order. The claim, the composed messages of
 * a claim, and the sent marks of sends that finish in the same turn each
 * share a commit. Only the composed messages' commit waits for the disk (so
 * every retry sends the same bytes); a claim, mark or redaction lost to a
 * power cut only repeats work (see CommitWait).
 */
export class OutboxWorker {
  private running = false;
  private loop: Promise<void> | null = null;
  /** Claimed (leased) rows waiting for a send slot. */
  private queue: OutboxJob[] = [];
  /** Sends waiting for the server's answer: one per slot. */
  private inFlight = new Set<Promise<void>>();
  /** Sends not yet recorded in the database (includes inFlight). */
  private settling = new Set<Promise<unknown>>();
  /** Woken by wake() at any time, so a wake during a claim or a send is not lost; interrupted when a slot frees or stop() comes. */
  private readonly wakeup = new Wakeup();
  /** With an odd claim, whether the extra row goes to the newest or the oldest end; alternates so neither starves. */
  private freshTurn = true;
  /** Rows wakeFirst() asked to claim ahead of the queue. */
  private firstWanted = 0;
  /** The sent marks of this turn of the event loop, committed together at its end. */
  private nextMarks: { ids: number[]; done: Promise<void> } | null = null;
  /** The redaction pass under way, and whether marks committed since it began. */
  private redacting: Promise<void> | null = null;
  private redactAgain = false;
  /** The pass REDACT_DELAY_MS after the first mark not yet redacted. */
  private redactTimer: NodeJS.Timeout | null = null;
  private lastPassAt: number | null = null;
  private readonly inDoubt: InDoubtLimit | null;

  constructor(private readonly o: OutboxWorkerOptions) {
    this.inDoubt = o.maxInDoubt ? new InDoubtLimit(o.maxInDoubt) : null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Lets the worker send right away instead of at its next poll (new mail was queued). */
  wake(): void {
    this.wakeup.wake();
  }

  /**
   * New mail was queued that must not wait behind the rows already claimed
   * (the acknowledgement of mail taken ahead of a backlog): the `count`
   * newest rows never tried are claimed at once and sent next. Without it
   * they would be claimed only after the queue drained, and by then the
   * backlog's next commit has queued newer rows, so they would fall in with
   * the oldest.
   */
  wakeFirst(count: number): void {
    this.firstWanted += count;
    this.wake();
  }

  /** Finishes the sends in hand, gives back claimed rows not started, then stops. */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeup.interrupt();
    await this.loop;
  }

  health(): { lastPassAt: number | null } {
    return { lastPassAt: this.lastPassAt };
  }

  private async run(): Promise<void> {
    // what a node killed between a sent mark and its redaction left flagged
    this.redactNow();
    // Whether the last claim came back full: more may be due.
    let more = true;
    // A wake taken while the slots were busy: it still asks for the next claim.
    let woken = false;
    let nextPoll = 0;
    while (this.running) {
      const concurrency = this.o.concurrency();
      if (this.firstWanted > 0) {
        const wanted = Math.min(this.firstWanted, this.o.batchSize);
        this.firstWanted = 0;
        try {
          await this.claimFirst(wanted);
        } catch (err) {
          this.o.logger.error({ code: 'OUTBOX_ERROR', err: (err as Error).message }, 'outbox pass failed');
        }
      }
      while (this.inFlight.size < concurrency && this.queue.length > 0) this.track(this.queue.shift()!);
      if (this.wakeup.take()) woken = true;
      const due = woken || more || Date.now() >= nextPoll;
      // Claim once the queue is empty and at least half the slots are free:
      // claims stay large during a backlog, and a claimed row never waits
      // more than a batch's worth of sends (the lease covers that).
      const free = concurrency - this.inFlight.size;
      const ready = this.queue.length === 0 && (this.inFlight.size === 0 || free * 2 >= concurrency);
      if (due && ready) {
        woken = false;
        nextPoll = Date.now() + this.o.pollIntervalMs;
        try {
          const jobs = await this.claim(this.o.batchSize);
          more = jobs.length === this.o.batchSize;
          await this.compose(jobs);
          this.queue.push(...jobs);
        } catch (err) {
          more = false;
          this.o.logger.error({ code: 'OUTBOX_ERROR', err: (err as Error).message }, 'outbox pass failed');
        }
        continue;
      }
      await this.wakeup.sleep(due ? null : nextPoll - Date.now());
    }
    await Promise.all(this.settling);
    this.redactNow();
    await this.redacting;
    // Rows claimed but not started go back at once rather than after their lease.
    const unsent = this.queue.splice(0).map((j) => j.id);
    if (unsent.length === 0) return;
    try {
      await this.o.store.releaseOutbox(unsent, this.o.clock.now().getTime());
    } catch (err) {
      this.o.logger.error(
        { code: 'OUTBOX_ERROR', err: (err as Error).message },
        'claimed mail could not be given back; it is due again once this node has left or its heartbeat has run out',
      );
    }
  }

  /** Starts a send in a slot; the slot frees when the server has answered, before the outcome's commit. */
  private track(job: OutboxJob): void {
    let release!: () => void;
    const slot = new Promise<void>((resolve) => (release = resolve));
    const p = this.deliver(job, release)
      .catch((err: unknown) => {
        // Recording the outcome failed (the database); the lease brings the row back.
        this.o.logger.error(
          { code: 'OUTBOX_ERROR', outboxId: job.id, err: (err as Error).message },
          'outbox send could not be recorded',
        );
      })
      .finally(release);
    this.inFlight.add(slot);
    this.settling.add(p);
    void slot.then(() => {
      this.inFlight.delete(slot);
      this.wakeup.interrupt();
    });
    void p.finally(() => this.settling.delete(p));
  }

  private async claim(limit: number): Promise<OutboxJob[]> {
    let fresh = Math.floor(limit / 2);
    if (limit % 2 === 1) {
      if (this.freshTurn) fresh++;
      this.freshTurn = !this.freshTurn;
    }
    const jobs = await this.o.store.claimOutbox(
      this.o.clock.now().getTime(),
      limit,
      this.o.leaseMs,
      fresh,
      this.o.claimant ?? null,
    );
    this.lastPassAt = this.o.clock.now().getTime();
    return jobs;
  }

  /**
   * Claims the `count` newest rows never tried and puts them at the head of
   * the queue. The queue stays within one claim's length, which is what the
   * lease is sized for: as many rows from its end go back (due at once).
   */
  private async claimFirst(count: number): Promise<void> {
    const jobs = await this.o.store.claimOutbox(
      this.o.clock.now().getTime(),
      count,
      this.o.leaseMs,
      count,
      this.o.claimant ?? null,
    );
    await this.compose(jobs);
    const surplus = this.queue.length + jobs.length - this.o.batchSize;
    const back = surplus > 0 ? this.queue.splice(-surplus).map((j) => j.id) : [];
    this.queue.unshift(...jobs);
    if (back.length > 0) await this.o.store.releaseOutbox(back, this.o.clock.now().getTime());
  }

  /**
   * Composes the claimed rows sent for the first time and keeps them, in one
   * commit, so every retry sends the very same bytes. A row whose message
   * cannot be composed is left to deliver(), which records the failure.
   */
  private async compose(jobs: OutboxJob[]): Promise<void> {
    const fresh = jobs.filter((j) => j.raw === null);
    if (fresh.length === 0) return;
    const now = this.o.clock.now();
    const composed = await Promise.allSettled(fresh.map((j) => composeMime(j.draft, now)));
    const items: { messageRow: number; raw: Buffer }[] = [];
    composed.forEach((c, i) => {
      if (c.status === 'fulfilled') items.push({ messageRow: fresh[i]!.messageRow, raw: c.value });
    });
    await this.o.store.saveOutboundRaw(items, now.getTime());
    composed.forEach((c, i) => {
      if (c.status === 'fulfilled') fresh[i]!.raw = c.value;
    });
  }

  /**
   * Resolves once the row is marked sent. The mark is committed at once,
   * never behind an earlier mark's commit: with marks queued one commit after
   * another, a busy outbox had a claim's worth of accepted mail unmarked when
   * the node was killed, all of it sent again. Sends accepted in the same
   * turn of the event loop share a commit.
   */
  private markSent(id: number): Promise<void> {
    if (this.nextMarks === null) {
      const ids: number[] = [];
      const done = new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          this.nextMarks = null;
          this.o.store.markOutboxSent(ids, this.o.clock.now().getTime()).then(() => {
            resolve();
            this.redactSoon();
          }, reject);
        }),
      );
      this.nextMarks = { ids, done };
    }
    this.nextMarks.ids.push(id);
    return this.nextMarks.done;
  }

  /** Redacts what was marked sent, REDACT_DELAY_MS from now unless a pass is due already. */
  private redactSoon(): void {
    if (this.redactTimer !== null) return;
    this.redactTimer = setTimeout(() => this.redactNow(), REDACT_DELAY_MS);
  }

  /**
   * Redacts the status links of sent mail, after the marks rather than in
   * them (see SqlOutboxQueue.markOutboxSent): one pass at a time, and one
   * more if marks were committed while it ran. A pass that fails leaves the
   * rows flagged for the next.
   */
  private redactNow(): void {
    if (this.redactTimer !== null) {
      clearTimeout(this.redactTimer);
      this.redactTimer = null;
    }
    if (this.redacting !== null) {
      this.redactAgain = true;
      return;
    }
    this.redacting = (async () => {
      do {
        this.redactAgain = false;
        try {
          await this.redactAll();
        } catch (err) {
          this.o.logger.error(
            { code: 'OUTBOX_ERROR', err: (err as Error).message },
            'sent mail could not be redacted; the next pass does it',
          );
          return;
        }
      } while (this.redactAgain);
    })().finally(() => {
      this.redacting = null;
    });
  }

  private async redactAll(): Promise<void> {
    while ((await this.o.store.redactSentMail(REDACT_BATCH)) === REDACT_BATCH);
  }

  /** One pass over the rows that are due now (up to `batchSize`), `concurrency` at a time. */
  async runOnce(): Promise<OutboxPass> {
    const pass: OutboxPass = { sent: 0, retrying: 0, failed: 0, withdrawn: 0 };
    const jobs = await this.claim(this.o.batchSize);
    await this.compose(jobs);
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) pass[await this.deliver(jobs[next++]!)]++;
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency(), jobs.length) }, lane));
    this.redactNow();
    await this.redacting;
    return pass;
  }

  /** Sends one row and records the outcome; `answered` runs once the server has answered (or failed to). */
  private async deliver(job: OutboxJob, answered: () => void = () => undefined): Promise<keyof OutboxPass> {
    const log = { outboxId: job.id, mailbox: job.mailbox, kind: job.kind, attempt: job.attempts };
    const started = Date.now();
    if (this.o.stillValid && !(await this.o.stillValid(job))) return 'withdrawn';
    // Set once the mail's end went out: its doubt ends when its outcome is recorded.
    let leaveDoubt: (() => void) | null = null;
    let recorded = false;
    const inDoubt = this.inDoubt;
    const beforeEnd = inDoubt
      ? async () => {
          const leave = await inDoubt.enter();
          // the send gave up while it waited: it never reached the server's end
          if (recorded) leave();
          else leaveDoubt = leave;
        }
      : undefined;
    try {
      let raw = job.raw;
      if (raw === null) {
        // compose() could not build it; this throws the reason.
        raw = await composeMime(job.draft, this.o.clock.now());
        await this.o.store.saveOutboundRaw([{ messageRow: job.messageRow, raw }], this.o.clock.now().getTime());
      }
      await this.o.mailerFor(job.mailbox).send({ from: job.envelopeFrom, to: job.envelopeTo }, raw, { beforeEnd });
      answered();
      await this.markSent(job.id);
      this.o.logger.info({ code: 'OUTBOX_SENT', ...log, ms: Date.now() - started }, 'mail sent');
      return 'sent';
    } catch (err) {
      answered();
      const failure = err instanceof SendError ? err.failure : classifySendError(err);
      const delay = failure.permanent ? null : this.o.schedule.delayAfter(job.attempts);
      const reason = `${failure.code}: ${failure.message}`;
      if (delay === null) {
        await this.o.store.markOutboxFailed(job.id, reason, this.o.clock.now().getTime());
        this.o.logger.error(
          { code: failure.permanent ? 'OUTBOX_REJECTED' : 'OUTBOX_GAVE_UP', ...log, error: reason },
          'mail could not be delivered',
        );
        return 'failed';
      }
      const next = this.o.clock.now().getTime() + delay;
      await this.o.store.markOutboxRetry(job.id, next, reason);
      const retry = { ...log, error: reason, nextAttemptAt: new Date(next).toISOString() };
      if (failure.auth) {
        // Every mail waits until someone fixes the login: say so loudly.
        this.o.logger.error(
          { code: 'OUTBOX_AUTH_FAILED', ...retry },
          'the SMTP server refused our login; mail stays queued and is retried',
        );
      } else {
        this.o.logger.warn({ code: 'OUTBOX_RETRY', ...retry }, 'send failed, will retry');
      }
      return 'retrying';
    } finally {
      recorded = true;
      (leaveDoubt as (() => void) | null)?.();
    }
  }
}

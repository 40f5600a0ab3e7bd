import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { composeMime } from '../send/compose-mime.js';
import { SendError, classifySendError, type Mailer } from '../send/mailer.js';
import type { OutboxJob, Store } from '../store/store.js';
import type { RetrySchedule } from './retry-schedule.js';

export interface OutboxWorkerOptions {
  store: Store;
  mailerFor: (mailbox: string) => Mailer;
  schedule: RetrySchedule;
  logger: Logger;
  clock: Clock;
  pollIntervalMs: number;
  /** Rows claimed at most at once. */
  batchSize: number;
  /** Sends in flight at once: the SMTP pool's connections, so none waits in the pool's own queue. */
  concurrency: number;
  /** How long a claimed row stays invisible to other workers; longer than any send deadline. */
  leaseMs: number;
}

export interface OutboxPass {
  sent: number;
  retrying: number;
  failed: number;
}

/**
 * Sends what the outbox holds, several rows at once. A row is marked sent
 * only after the server accepted the message; a crash in between sends it
 * again after the lease (at least once: SMTP offers nothing stronger), never
 * loses it.
 *
 * The loop claims whenever enough send slots are free rather than in passes
 * that wait for their slowest send, so one server that stalls until the
 * deadline holds up one slot, not the queue. Each claim gives half its rows
 * to the newest mail never tried and half to the oldest due (see
 * `Store.claimOutbox`): a fresh acknowledgement goes out within one claim
 * however long the backlog, and the backlog still drains in order.
 */
export class OutboxWorker {
  private running = false;
  private loop: Promise<void> | null = null;
  private inFlight = new Set<Promise<unknown>>();
  /** Set by wake() at any time, so a wake during a claim or a send is not lost. */
  private woken = false;
  private nudge: (() => void) | null = null;
  /** With a single free slot, whether it goes to the newest or the oldest row; alternates so neither end starves. */
  private freshTurn = true;
  private lastPassAt: number | null = null;

  constructor(private readonly o: OutboxWorkerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Lets the worker send right away instead of at its next poll (new mail was queued). */
  wake(): void {
    this.woken = true;
    this.nudge?.();
  }

  /** Finishes the sends in hand, then stops. */
  async stop(): Promise<void> {
    this.running = false;
    this.nudge?.();
    await this.loop;
  }

  health(): { lastPassAt: number | null } {
    return { lastPassAt: this.lastPassAt };
  }

  private async run(): Promise<void> {
    // Whether the last claim filled every slot it asked for: more may be due.
    let more = true;
    let nextPoll = 0;
    while (this.running) {
      const free = Math.min(this.o.concurrency - this.inFlight.size, this.o.batchSize);
      const due = this.woken || more || Date.now() >= nextPoll;
      // Claiming costs a write transaction; waiting for half the slots keeps
      // that cost per row small during a backlog.
      const worthIt = this.inFlight.size === 0 || free * 2 >= this.o.concurrency;
      if (due && free > 0 && worthIt) {
        this.woken = false;
        nextPoll = Date.now() + this.o.pollIntervalMs;
        try {
          const jobs = await this.claim(free);
          more = jobs.length === free;
          for (const job of jobs) this.track(job);
        } catch (err) {
          more = false;
          this.o.logger.error({ code: 'OUTBOX_ERROR', err: (err as Error).message }, 'outbox pass failed');
        }
        continue;
      }
      await this.sleep(due ? null : nextPoll - Date.now());
    }
    await Promise.all(this.inFlight);
  }

  /** Waits for wake(), stop(), a finished send, or `ms` (null: no timer). */
  private sleep(ms: number | null): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === null ? undefined : setTimeout(done, Math.max(0, ms));
      const self = this;
      function done() {
        clearTimeout(timer);
        self.nudge = null;
        resolve();
      }
      this.nudge = done;
    });
  }

  private track(job: OutboxJob): void {
    const p = this.deliver(job).catch((err: unknown) => {
      // Recording the outcome failed (the database); the lease brings the row back.
      this.o.logger.error({ code: 'OUTBOX_ERROR', outboxId: job.id, err: (err as Error).message }, 'outbox send could not be recorded');
    });
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      this.nudge?.();
    });
  }

  private async claim(limit: number): Promise<OutboxJob[]> {
    let fresh = Math.floor(limit / 2);
    if (limit % 2 === 1) {
      if (this.freshTurn) fresh++;
      this.freshTurn = !this.freshTurn;
    }
    const jobs = await this.o.store.claimOutbox(this.o.clock.now().getTime(), limit, this.o.leaseMs, fresh);
    this.lastPassAt = this.o.clock.now().getTime();
    return jobs;
  }

  /** One pass over the rows that are due now (up to `batchSize`), `concurrency` at a time. */
  async runOnce(): Promise<OutboxPass> {
    const pass: OutboxPass = { sent: 0, retrying: 0, failed: 0 };
    const jobs = await this.claim(this.o.batchSize);
    let next = 0;
    const lane = async () => {
      while (next < jobs.length) pass[await this.deliver(jobs[next++]!)]++;
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, jobs.length) }, lane));
    return pass;
  }

  private async deliver(job: OutboxJob): Promise<keyof OutboxPass> {
    const log = { outboxId: job.id, mailbox: job.mailbox, kind: job.kind, attempt: job.attempts };
    const started = Date.now();
    try {
      let raw = job.raw;
      if (raw === null) {
        // Composed once and kept, so every retry sends the very same bytes.
        raw = await composeMime(job.draft, this.o.clock.now());
        await this.o.store.saveOutboundRaw(job.messageRow, raw, this.o.clock.now().getTime());
      }
      await this.o.mailerFor(job.mailbox).send({ from: job.envelopeFrom, to: job.envelopeTo }, raw);
      await this.o.store.markOutboxSent(job.id, this.o.clock.now().getTime());
      this.o.logger.info({ code: 'OUTBOX_SENT', ...log, ms: Date.now() - started }, 'mail sent');
      return 'sent';
    } catch (err) {
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
        this.o.logger.error({ code: 'OUTBOX_AUTH_FAILED', ...retry }, 'the SMTP server refused our login; mail stays queued and is retried');
      } else {
        this.o.logger.warn({ code: 'OUTBOX_RETRY', ...retry }, 'send failed, will retry');
      }
      return 'retrying';
    }
  }
}

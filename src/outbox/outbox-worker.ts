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
  batchSize: number;
  /** How long a claimed row stays invisible to other workers; longer than any send deadline. */
  leaseMs: number;
  /** Asked just before each send; false means the row was withdrawn (an SLA notice that no longer holds) and is skipped. */
  stillValid?: (job: OutboxJob) => boolean | Promise<boolean>;
}

export interface OutboxPass {
  sent: number;
  retrying: number;
  failed: number;
  withdrawn: number;
}

/**
 * Sends what the outbox holds. A row is marked sent only after the server
 * accepted the message; a crash in between sends it again after the lease
 * (at least once: SMTP offers nothing stronger), never loses it.
 */
export class OutboxWorker {
  private running = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private lastPassAt: number | null = null;

  constructor(private readonly o: OutboxWorkerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Lets the worker send right away instead of at its next poll (new mail was queued). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Finishes the send in hand, then stops. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  health(): { lastPassAt: number | null } {
    return { lastPassAt: this.lastPassAt };
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const pass = await this.runOnce();
        if (pass.sent + pass.retrying + pass.failed >= this.o.batchSize) continue;
      } catch (err) {
        this.o.logger.error({ code: 'OUTBOX_ERROR', err: (err as Error).message }, 'outbox pass failed');
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.pollIntervalMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  /** One pass over the rows that are due now. */
  async runOnce(): Promise<OutboxPass> {
    const pass: OutboxPass = { sent: 0, retrying: 0, failed: 0, withdrawn: 0 };
    const jobs = await this.o.store.claimOutbox(this.o.clock.now().getTime(), this.o.batchSize, this.o.leaseMs);
    for (const job of jobs) {
      pass[await this.deliver(job)]++;
      if (!this.running && this.loop !== null) break;
    }
    this.lastPassAt = this.o.clock.now().getTime();
    return pass;
  }

  private async deliver(job: OutboxJob): Promise<keyof OutboxPass> {
    const log = { outboxId: job.id, mailbox: job.mailbox, kind: job.kind, attempt: job.attempts };
    const started = Date.now();
    if (this.o.stillValid && !(await this.o.stillValid(job))) return 'withdrawn';
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
      this.o.logger.warn({ code: 'OUTBOX_RETRY', ...log, error: reason, nextAttemptAt: new Date(next).toISOString() }, 'send failed, will retry');
      return 'retrying';
    }
  }
}

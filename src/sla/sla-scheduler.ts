// Sleeps until the next ticket is due, runs a pass, sleeps again. Finding
// the next due instant is one index probe (min(next_due)), so an idle desk
// costs nothing however many tickets are open.

import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Wakeup } from '../core/wakeup.js';
import type { SlaEngine } from './sla-engine.js';
import type { TickReport } from './sla-tick.js';

/**
 * Longest sleep. Changes made by another process (`ticketd tickets status`)
 * can move a deadline earlier without waking this one; looking again every
 * minute bounds how late that makes a notice.
 */
export const MAX_SLEEP_MS = 60_000;

export interface SlaSchedulerOptions {
  engine: SlaEngine;
  clock: Clock;
  logger: Logger;
  /** After each pass (wake the outbox for what it queued, count breaches). */
  onPass?: (report: TickReport) => void;
  maxSleepMs?: number;
}

export class SlaScheduler {
  private running = false;
  private loop: Promise<void> | null = null;
  /** The engine's: a ticket change that moved a deadline ends the sleep, as wake() does. */
  private readonly wakeup: Wakeup;

  constructor(private readonly o: SlaSchedulerOptions) {
    this.wakeup = o.engine.deadlineMoved;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Look at the next due instant again (a deadline moved, or the clock did). */
  wake(): void {
    this.wakeup.wake();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      // Wakes come after the change's commit (SqlTransaction.afterCommit), so
      // the next due instant read here, on any connection, includes it.
      await new Promise((resolve) => setImmediate(resolve));
      this.wakeup.take();
      let sleepMs = this.o.maxSleepMs ?? MAX_SLEEP_MS;
      try {
        const now = this.o.clock.now().getTime();
        const due = await this.o.engine.nextDue();
        if (due !== null && due <= now) {
          const report = await this.o.engine.tick(now);
          this.o.onPass?.(report);
          // The pass moved the deadlines it handled; read the next one afresh.
          continue;
        } else if (due !== null) {
          sleepMs = Math.min(sleepMs, due - now);
        }
      } catch (err) {
        this.o.logger.error({ code: 'SLA_SCHEDULER_ERROR', error: (err as Error).message }, 'SLA pass failed');
      }
      // A wake that came during the pass ends this sleep at once.
      if (this.running) await this.wakeup.sleep(sleepMs);
    }
  }
}

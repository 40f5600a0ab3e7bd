import type { Duration } from '../core/duration.js';

/**
 * When to try a failed send again. The schedule is data (config
 * `outbox.retrySchedule`, read into durations by the config schema): the
 * n-th entry is the wait after the n-th failed attempt; past the last entry
 * the row is failed for good.
 */
export class RetrySchedule {
  constructor(private readonly delays: readonly Duration[]) {}

  /** Delay after `attempts` failed attempts, or null when the schedule is exhausted. */
  delayAfter(attempts: number): number | null {
    return this.delays[attempts - 1]?.ms ?? null;
  }
}

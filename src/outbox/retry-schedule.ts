import { parseDuration } from '../core/duration.js';

/**
 * When to try a failed send again. The schedule is data (config
 * `outbox.retrySchedule`): the n-th entry is the wait after the n-th failed
 * attempt; past the last entry the row is failed for good.
 */
export class RetrySchedule {
  private constructor(private readonly delaysMs: number[]) {}

  static parse(entries: readonly string[]): RetrySchedule {
    return new RetrySchedule(entries.map(parseDuration));
  }

  /** Delay after `attempts` failed attempts, or null when the schedule is exhausted. */
  delayAfter(attempts: number): number | null {
    return this.delaysMs[attempts - 1] ?? null;
  }
}

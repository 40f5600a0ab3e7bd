/** How long to wait before reconnecting: capped exponential growth, kept as data so tests and config can shrink it. */
export interface BackoffSchedule {
  /** Upper bound of the first wait. */
  baseMs: number;
  /** Growth of the upper bound per failed attempt. */
  factor: number;
  /** The upper bound never grows past this. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffSchedule = { baseMs: 1_000, factor: 2, maxMs: 300_000 };

/**
 * Wait before reconnect attempt `attempt` (1 for the first retry). Full jitter
 * (a uniform pick below the capped bound) keeps many daemons that lost the same
 * server from reconnecting in lockstep.
 */
export function nextDelay(
  attempt: number,
  schedule: BackoffSchedule = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, Math.floor(attempt) - 1);
  const bound = Math.min(schedule.maxMs, schedule.baseMs * schedule.factor ** exponent);
  return Math.floor(random() * bound);
}

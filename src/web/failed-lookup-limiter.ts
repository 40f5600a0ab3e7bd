import type { Clock } from '../core/clock.js';

const WINDOW_MS = 60_000;
/** Clients remembered at most; beyond that the ones idle longest are forgotten first. */
const MAX_CLIENTS = 10_000;

/**
 * Counts failed status-link lookups per client address over a sliding
 * minute. Once a client is at the limit every lookup it makes is refused,
 * valid or not, so guessing cannot go on by telling 404 from 200.
 */
export class FailedLookupLimiter {
  /** Failure times per client, oldest first; Map order is least recently failed first. */
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly perMinute: () => number,
    private readonly clock: Clock,
  ) {}

  /** Seconds until the client may look up again; 0 when it may now. */
  blockedFor(client: string): number {
    const times = this.recent(client);
    const limit = this.perMinute();
    if (times.length < limit) return 0;
    const freedAt = times[times.length - limit]! + WINDOW_MS;
    return Math.max(1, Math.ceil((freedAt - this.clock.now().getTime()) / 1000));
  }

  recordFailure(client: string): void {
    const times = this.recent(client);
    times.push(this.clock.now().getTime());
    // Re-inserting moves the client to the end, keeping the map in failure order.
    this.failures.delete(client);
    this.failures.set(client, times);
    while (this.failures.size > MAX_CLIENTS) this.failures.delete(this.failures.keys().next().value!);
  }

  private recent(client: string): number[] {
    const since = this.clock.now().getTime() - WINDOW_MS;
    const times = (this.failures.get(client) ?? []).filter((t) => t > since);
    if (times.length === 0) this.failures.delete(client);
    else this.failures.set(client, times);
    return times;
  }
}

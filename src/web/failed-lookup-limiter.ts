import type { Clock } from '../core/clock.js';

const WINDOW_MS = 60_000;
/** Clients remembered at most; beyond that the ones idle longest are forgotten first. */
const MAX_CLIENTS = 10_000;

/**
 * Counts status-link lookups per client address over a sliding minute.
 * Once a client is at the limit every lookup it makes is refused.
 */
export class LookupLimiter {
  /** Lookup times per client, oldest first; Map order is least recently seen first. */
  private readonly seen = new Map<string, number[]>();

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

  record(client: string): void {
    const times = this.recent(client);
    times.push(this.clock.now().getTime());
    // Re-inserting moves the client to the end, keeping the map in order of last use.
    this.seen.delete(client);
    this.seen.set(client, times);
    while (this.seen.size > MAX_CLIENTS) this.seen.delete(this.seen.keys().next().value!);
  }

  private recent(client: string): number[] {
    const since = this.clock.now().getTime() - WINDOW_MS;
    const times = (this.seen.get(client) ?? []).filter((t) => t > since);
    if (times.length === 0) this.seen.delete(client);
    else this.seen.set(client, times);
    return times;
  }
}

/**
 * Failed lookups only: once a client is at the limit every lookup it makes
 * is refused, valid or not, so guessing cannot go on by telling 404 from 200.
 */
export class FailedLookupLimiter extends LookupLimiter {
  recordFailure(client: string): void {
    this.record(client);
  }
}

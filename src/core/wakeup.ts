import { setTimeout as delay } from 'node:timers/promises';

/**
 * The sleep of a worker's loop, which other code can end early. A wake() is
 * kept until the loop takes it, so one that arrives while the loop is busy
 * (claiming, sending, running a pass) ends the next sleep at once instead of
 * being lost.
 */
export class Wakeup {
  private pending = false;
  private waiter: (() => void) | null = null;

  /** Asks the loop to look again: ends the current sleep, or else the next one at once. */
  wake(): void {
    this.pending = true;
    this.waiter?.();
  }

  /** Ends the current sleep, if any, and asks for nothing: the loop reads its own state again (a slot freed, a connection closed). */
  interrupt(): void {
    this.waiter?.();
  }

  /** Whether a wake() came since the last take(). */
  get woken(): boolean {
    return this.pending;
  }

  /** Whether a wake() came since the last take(); clears it. */
  take(): boolean {
    const woken = this.pending;
    this.pending = false;
    return woken;
  }

  /**
   * Resolves after `ms` (null: no timer), on wake() or interrupt(), or when
   * `until` settles; at once when a wake is waiting to be taken. One sleep at
   * a time: the loop that owns this is the only one that sleeps on it.
   */
  sleep(ms: number | null, until?: Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.waiter === done) this.waiter = null;
        resolve();
      };
      const timer = ms === null ? undefined : setTimeout(done, Math.max(0, ms));
      this.waiter = done;
      void until?.then(done, done);
      if (this.pending) done();
    });
  }
}

/** Resolves after `ms`, or at once when `signal` is aborted: a wait that a stop cuts short. */
export async function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  await delay(ms, undefined, { signal }).catch((err: unknown) => {
    if (!signal.aborted) throw err;
  });
}

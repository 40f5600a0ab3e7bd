import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { abortableSleep, Wakeup } from '../../src/core/wakeup.js';

/** Whether `p` has settled once pending timers up to `ms` from now have run. */
async function settledAfter(p: Promise<unknown>, ms = 0): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await vi.advanceTimersByTimeAsync(ms);
  return settled;
}

describe('Wakeup', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sleeps for the time asked when nobody wakes it', async () => {
    const w = new Wakeup();
    const sleep = w.sleep(1000);
    expect(await settledAfter(sleep, 999)).toBe(false);
    expect(await settledAfter(sleep, 1)).toBe(true);
  });

  it('ends a sleep on wake(), and a sleep without a timer too', async () => {
    const w = new Wakeup();
    const timed = w.sleep(60_000);
    w.wake();
    expect(await settledAfter(timed)).toBe(true);
    const untimed = w.sleep(null);
    expect(await settledAfter(untimed)).toBe(true);
  });

  it('keeps a wake that came while the loop was busy: the next sleep ends at once, until the loop takes it', async () => {
    const w = new Wakeup();
    w.wake();
    expect(w.woken).toBe(true);
    expect(await settledAfter(w.sleep(null))).toBe(true);
    expect(w.take()).toBe(true);
    expect(w.woken).toBe(false);
    expect(w.take()).toBe(false);
    const after = w.sleep(null);
    expect(await settledAfter(after, 60_000)).toBe(false);
    w.wake();
    expect(await settledAfter(after)).toBe(true);
  });

  it('interrupt() ends the current sleep only, and asks for nothing', async () => {
    const w = new Wakeup();
    const sleep = w.sleep(null);
    w.interrupt();
    expect(await settledAfter(sleep)).toBe(true);
    expect(w.woken).toBe(false);
    w.interrupt();
    expect(await settledAfter(w.sleep(null), 60_000)).toBe(false);
  });

  it('ends a sleep when the promise it also waits on settles, either way', async () => {
    const w = new Wakeup();
    let resolve!: () => void;
    const fulfilled = w.sleep(60_000, new Promise<void>((r) => (resolve = r)));
    expect(await settledAfter(fulfilled)).toBe(false);
    resolve();
    expect(await settledAfter(fulfilled)).toBe(true);
    const rejected = w.sleep(60_000, Promise.reject(new Error('connection lost')));
    expect(await settledAfter(rejected)).toBe(true);
  });

  it('leaves no timer behind once a sleep ends early', async () => {
    const w = new Wakeup();
    const sleep = w.sleep(60_000);
    w.wake();
    await sleep;
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('abortableSleep', () => {
  it('resolves at once when the signal is aborted, however long the sleep', async () => {
    const stop = new AbortController();
    const sleep = abortableSleep(3_600_000, stop.signal);
    stop.abort();
    await expect(sleep).resolves.toBeUndefined();
    const aborted = new AbortController();
    aborted.abort();
    await expect(abortableSleep(3_600_000, aborted.signal)).resolves.toBeUndefined();
  });

  it('resolves after the time asked when nothing aborts it', async () => {
    await expect(abortableSleep(5, new AbortController().signal)).resolves.toBeUndefined();
  });
});

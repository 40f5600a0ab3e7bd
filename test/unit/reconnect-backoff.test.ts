import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, nextDelay } from '../../src/sources/imap/reconnect-backoff.js';

const schedule = { baseMs: 1_000, factor: 2, maxMs: 10_000 };
/** Just below 1: the top of the jitter range. */
const highest = () => 0.999999;

describe('nextDelay', () => {
  it('grows the upper bound by the factor per attempt until the cap', () => {
    const bounds = [1, 2, 3, 4, 5, 6, 10].map((attempt) => nextDelay(attempt, schedule, highest));
    expect(bounds).toEqual([999, 1_999, 3_999, 7_999, 9_999, 9_999, 9_999]);
  });

  it('picks uniformly below the bound (full jitter)', () => {
    expect(nextDelay(3, schedule, () => 0)).toBe(0);
    expect(nextDelay(3, schedule, () => 0.5)).toBe(2_000);
    expect(nextDelay(3, schedule, () => 0.25)).toBe(1_000);
  });

  it('stays at the cap for attempts so large the exponent overflows', () => {
    expect(nextDelay(5_000, schedule, highest)).toBe(9_999);
    expect(nextDelay(Number.MAX_SAFE_INTEGER, schedule, () => 0.5)).toBe(5_000);
  });

  it('treats attempts below 1 as the first', () => {
    expect(nextDelay(0, schedule, highest)).toBe(999);
    expect(nextDelay(-3, schedule, highest)).toBe(999);
  });

  it('defaults to 1 s doubling up to 5 min', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 1_000, factor: 2, maxMs: 300_000 });
    expect(nextDelay(1, undefined, highest)).toBe(999);
    expect(nextDelay(20, undefined, highest)).toBe(299_999);
  });
});

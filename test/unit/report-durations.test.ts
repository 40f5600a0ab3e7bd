// The report's median and 90th percentile, on counts where the two ways of
// taking them differ.

import { describe, expect, it } from 'vitest';
import { durations } from '../../src/sla/service-report.js';

describe('report durations', () => {
  it('has none for no tickets', () => {
    expect(durations([])).toEqual({ count: 0, medianMs: null, p90Ms: null });
  });

  it('takes the middle of an odd count and the mean of the middle two of an even one, in any order', () => {
    expect(durations([7]).medianMs).toBe(7);
    expect(durations([9, 1, 5]).medianMs).toBe(5);
    expect(durations([10, 2, 4, 8]).medianMs).toBe(6);
  });

  it('takes the 90th percentile by nearest rank', () => {
    const ten = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    // 9 of 10 do not exceed 9: the ninth value, not an interpolation towards the tenth.
    expect(durations(ten).p90Ms).toBe(9);
    // With 11, 90% is 9.9 values: the tenth.
    expect(durations([...ten, 11]).p90Ms).toBe(10);
    expect(durations([3, 1]).p90Ms).toBe(3);
  });
});

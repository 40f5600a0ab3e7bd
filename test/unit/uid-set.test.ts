import { describe, expect, it } from 'vitest';
import { uidSet } from '../../src/sources/imap/imap-worker.js';

describe('uidSet', () => {
  it('writes runs of UIDs as ranges, in order, once each', () => {
    expect(uidSet([7, 1, 2, 3, 9, 10, 3])).toBe('1:3,7,9:10');
    expect(uidSet([42])).toBe('42');
    expect(uidSet([])).toBe('');
    expect(uidSet(Array.from({ length: 5000 }, (_, i) => i * 2 + 1)).split(',')).toHaveLength(5000);
    expect(uidSet(Array.from({ length: 5000 }, (_, i) => i + 1))).toBe('1:5000');
  });
});

import { describe, expect, it } from 'vitest';
import { planLeases } from '../../src/daemon/mailbox-leases.js';

const MAILBOXES = Array.from({ length: 20 }, (_, i) => `box${i}`);

describe('planLeases', () => {
  it('a lone node takes every mailbox', () => {
    const plan = planLeases({ mailboxes: MAILBOXES, me: 'a', live: ['a'], leases: [], now: 0 });
    expect(plan.share).toBe(20);
    expect(plan.take.sort()).toEqual([...MAILBOXES].sort());
    expect(plan.release).toEqual([]);
  });

  it('a node holding more than its share hands the excess over when others join', () => {
    const leases = MAILBOXES.map((mailbox) => ({ mailbox, holder: 'a', expiresAt: 100 }));
    const plan = planLeases({ mailboxes: MAILBOXES, me: 'a', live: ['a', 'b', 'c'], leases, now: 0 });
    expect(plan.share).toBe(7);
    expect(plan.release).toHaveLength(13);
    expect(plan.take).toEqual([]);
  });

  it('takes free, expired and dead-held mailboxes up to its share, never live-held ones', () => {
    const leases = [
      { mailbox: 'box0', holder: 'b', expiresAt: 100 }, // live holder
      { mailbox: 'box1', holder: 'b', expiresAt: 5 }, // lease ran out
      { mailbox: 'box2', holder: 'dead', expiresAt: 100 }, // holder's heartbeat is gone
    ];
    const plan = planLeases({ mailboxes: ['box0', 'box1', 'box2', 'box3'], me: 'a', live: ['a', 'b'], leases, now: 10 });
    expect(plan.share).toBe(2);
    expect(plan.take).toHaveLength(2);
    expect(plan.take).not.toContain('box0');
  });

  it('a stopping node keeps what it holds until it gives it back, but the others share the rest without it', () => {
    const leases = MAILBOXES.slice(0, 7).map((mailbox) => ({ mailbox, holder: 'c', expiresAt: 100 }));
    const plan = planLeases({ mailboxes: MAILBOXES, me: 'a', live: ['a', 'b', 'c'], stopping: ['c'], leases, now: 0 });
    expect(plan.share).toBe(10);
    expect(plan.take).toHaveLength(10);
    expect(plan.take.filter((m) => MAILBOXES.slice(0, 7).includes(m))).toEqual([]);
  });

  it('nodes starting together prefer different mailboxes', () => {
    const a = planLeases({ mailboxes: MAILBOXES, me: 'a', live: ['a', 'b'], leases: [], now: 0 }).take;
    const b = planLeases({ mailboxes: MAILBOXES, me: 'b', live: ['a', 'b'], leases: [], now: 0 }).take;
    const overlap = a.filter((m) => b.includes(m)).length;
    expect(overlap).toBeLessThan(10);
  });
});

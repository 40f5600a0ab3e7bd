import { describe, expect, it } from 'vitest';
import { InDoubtLimit } from '../../src/outbox/in-doubt.js';

/** Whether the promise settled by the time the microtasks queued so far have run. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('InDoubtLimit', () => {
  it('lets the next mail in only when one in doubt leaves', async () => {
    const limit = new InDoubtLimit(() => 1);
    const leaveFirst = await limit.enter();
    const second = limit.enter();
    expect(await settled(second)).toBe(false);
    leaveFirst();
    expect(await settled(second)).toBe(true);
  });

  it('counts a leave once however often it is called', async () => {
    const limit = new InDoubtLimit(() => 1);
    const leave = await limit.enter();
    leave();
    leave();
    const a = await limit.enter();
    const b = limit.enter();
    expect(await settled(b)).toBe(false);
    a();
    expect(await settled(b)).toBe(true);
  });

  it('reads its limit on every entry, so a raised limit lets waiting mail in as others leave', async () => {
    let max = 1;
    const limit = new InDoubtLimit(() => max);
    const first = await limit.enter();
    const waiting = [limit.enter(), limit.enter()];
    max = 3;
    first();
    expect(await settled(Promise.all(waiting))).toBe(true);
  });
});

import { DateTime } from 'luxon';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { SlaScheduler } from '../../src/sla/sla-scheduler.js';
import type { TickReport } from '../../src/sla/sla-tick.js';
import { openDesk, type SlaDesk } from './sla-fixture.js';

const berlin = (text: string) => DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();

let desk: SlaDesk | null = null;
let scheduler: SlaScheduler | null = null;
afterEach(async () => {
  await scheduler?.stop();
  await desk?.close();
  desk = scheduler = null;
});

function start(d: SlaDesk, opts: { maxSleepMs?: number } = {}) {
  const passes: TickReport[] = [];
  const waiters: (() => void)[] = [];
  scheduler = new SlaScheduler({
    engine: d.runtime.sla,
    clock: d.clock,
    logger: silentLogger(),
    onPass: (r) => {
      passes.push(r);
      for (const w of waiters.splice(0)) w();
    },
    ...opts,
  });
  scheduler.start();
  const nextPass = () => new Promise<void>((resolve) => waiters.push(resolve));
  return { passes, nextPass };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('SLA scheduler', () => {
  it('sleeps while nothing is due and runs a pass once the clock reaches the next due instant', async () => {
    desk = await openDesk(new Date(berlin('2026-03-02T10:00')).toISOString());
    const d = desk;
    const { passes, nextPass } = start(d);
    await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    await settle();
    expect(passes).toEqual([]);

    d.clock.set(new Date(berlin('2026-03-02T14:00')));
    const pass = nextPass();
    scheduler!.wake();
    await pass;
    expect(passes).toHaveLength(1);
    expect(passes[0]?.queued.map((q) => q.kind)).toEqual(['delay-notice', 'staff-warning']);
    // Nothing more is due: no further pass.
    await settle();
    expect(passes).toHaveLength(1);
  });

  it('is woken by a ticket change in the same process, after its commit', async () => {
    desk = await openDesk(new Date(berlin('2026-03-02T10:00')).toISOString());
    const d = desk;
    const first = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    const { passes, nextPass } = start(d, { maxSleepMs: 3_600_000 });
    await settle();
    // The clock jumps past the first ticket's deadlines while the scheduler sleeps.
    d.clock.set(new Date(berlin('2026-03-02T14:00')));
    await settle();
    expect(passes).toEqual([]);

    const pass = nextPass();
    await d.receive({ from: 'Bob <bob@customer.example>', subject: 'Another one', messageId: 'q2@customer.example' });
    await pass;
    expect(passes[0]?.queued.map((q) => `${q.ref} ${q.kind}`)).toEqual([`${first} delay-notice`, `${first} staff-warning`]);
  });

  it('stops promptly while asleep', async () => {
    desk = await openDesk(new Date(berlin('2026-03-02T10:00')).toISOString());
    const d = desk;
    start(d, { maxSleepMs: 3_600_000 });
    await settle();
    const started = Date.now();
    await scheduler!.stop();
    scheduler = null;
    expect(Date.now() - started).toBeLessThan(500);
  });
});

// A tick costs in proportion to the tickets that are due, not to the tickets
// that are open: proven on 100,000 open tickets by what a pass runs, what
// it changes and how SQLite plans its one query.

import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { namedQueriesRun, populate, totalChanges } from '../bench/sla-population.js';
import { loadNamedQueries } from '../../src/store/named-queries.js';
import { dbOf } from '../harness/sqlite-store.js';
import { openDesk, type SlaDesk } from './sla-fixture.js';

const OPEN_TICKETS = 100_000;
const OVERDUE = 100;
const MIN = 60_000;

const berlin = (text: string) => DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();
// Monday: the overdue tickets came in at 09:00, everything else since 12:00.
const NOW = berlin('2026-03-02T14:00');
const OLD = berlin('2026-03-02T09:00');
const RECENT = berlin('2026-03-02T12:00');

let desk: SlaDesk;

beforeAll(async () => {
  desk = await openDesk(new Date(NOW).toISOString());
  await populate(desk.runtime, OVERDUE, () => OLD, 'OLD');
  await populate(desk.runtime, OPEN_TICKETS - OVERDUE, (i) => RECENT + (i % 60) * MIN);
}, 120_000);

afterAll(() => desk?.close());

function plan(name: string, params: Record<string, number>): string {
  const db = dbOf(desk.runtime);
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${loadNamedQueries('sqlite').get(name)}`).all(params) as { detail: string }[];
  return rows.map((r) => r.detail).join('; ');
}

describe(`${OPEN_TICKETS.toLocaleString('en')} open tickets`, () => {
  it('finds the next due instant and the due tickets through the next_due index, never a scan', async () => {
    expect(plan('sla-next-due', {})).toMatch(/^SEARCH ticket_sla USING COVERING INDEX ticket_sla_next_due/);
    const due = plan('sla-due', { now: NOW, limit: 500 });
    expect(due).toMatch(/^SEARCH ticket_sla USING COVERING INDEX ticket_sla_next_due \(next_due[<>]/);
    expect(due).not.toMatch(/SCAN|TEMP B-TREE/);
  });

  it('a tick with nothing due runs one index range query and changes no row', async () => {
    // 80% of the oldest recent ticket's target falls at 15:12; before that nothing but the overdue ones is due.
    const early = berlin('2026-03-02T10:00');
    const before = totalChanges(desk.runtime);
    const { result, queries } = await namedQueriesRun(desk.runtime, () => desk.runtime.sla.tick(early));
    expect(result).toMatchObject({ tickets: 0, queued: [], skipped: [], breached: [] });
    expect(queries).toEqual(['sla-due']);
    expect(totalChanges(desk.runtime) - before).toBe(0);
  });

  it('the scheduler learns the next due instant from one index probe', async () => {
    const { result, queries } = await namedQueriesRun(desk.runtime, () => desk.runtime.sla.nextDue());
    expect(queries).toEqual(['sla-next-due']);
    // The overdue tickets reach 80% of four business hours at 12:12.
    expect(result).toBe(berlin('2026-03-02T12:12'));
  });

  it('a tick with 100 due tickets touches those 100 and no other', async () => {
    const { result, queries } = await namedQueriesRun(desk.runtime, () => desk.runtime.sla.tick(NOW));
    expect(result.tickets).toBe(OVERDUE);
    expect(result.queued.filter((q) => q.kind === 'delay-notice')).toHaveLength(OVERDUE);
    expect(new Set(result.queued.map((q) => q.ref)).size).toBe(OVERDUE);
    expect(result.queued.every((q) => q.ref.startsWith('OLD-'))).toBe(true);
    // Per due ticket, a bounded number of statements, whatever the number of open tickets.
    expect(queries.length).toBeLessThan(OVERDUE * 40);

    const again = await namedQueriesRun(desk.runtime, () => desk.runtime.sla.tick(NOW));
    expect(again.result.tickets).toBe(0);
    expect(again.queries).toEqual(['sla-due']);
  });
});

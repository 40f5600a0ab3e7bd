// The pre-send check of SLA mail: a queued delay notice or staff warning is
// sent only while what it says still holds, and withdrawn otherwise.

import { DateTime } from 'luxon';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import type { TicketStatus } from '../../src/core/types.js';
import { dbOf } from '../harness/sqlite-store.js';
import { openDesk, slaConfigJson, STANDARD_POLICY, type SlaDesk } from './sla-fixture.js';

function berlin(text: string): number {
  return DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();
}

let desk: SlaDesk | null = null;
afterEach(async () => {
  await desk?.close();
  desk = null;
});

interface Row {
  id: number;
  messageRow: number;
  kind: string;
  status: string;
}

function slaRows(d: SlaDesk, ref: string): Row[] {
  return dbOf(d.runtime)
    .prepare(
      `SELECT o.id, o.message_row AS messageRow, m.kind, o.status FROM outbox o JOIN messages m ON m.id = o.message_row
       JOIN tickets t ON t.id = m.ticket_id WHERE t.ref = ? AND m.kind IN ('delay-notice', 'staff-warning') ORDER BY o.id`,
    )
    .all(ref) as Row[];
}

/** A ticket received Monday 09:00 with its first-response notice and 100% warning queued at 13:30 (4h target). */
async function overdue(logger = pino({ level: 'silent' })): Promise<{ d: SlaDesk; ref: string; rows: Row[] }> {
  desk = await openDesk(DateTime.fromISO('2026-03-02T09:00', { zone: 'Europe/Berlin' }).toISO()!, { logger });
  const ref = await desk.receive({ subject: 'Printer on fire', messageId: 'w1@customer.example' });
  await desk.runtime.sla.tick(berlin('2026-03-02T13:30'));
  const rows = slaRows(desk, ref);
  expect(rows.map((r) => `${r.kind} ${r.status}`)).toEqual(['delay-notice pending', 'staff-warning pending']);
  return { d: desk, ref, rows };
}

async function check(d: SlaDesk, rows: Row[], at: string): Promise<boolean[]> {
  const sent: boolean[] = [];
  for (const r of rows) sent.push(await d.runtime.sla.beforeSend(r, berlin(at)));
  return sent;
}

describe('SLA mail checked before sending', () => {
  it('passes while the ticket still waits, also on hold, and never reads for other mail', async () => {
    const { d, ref, rows } = await overdue();
    expect(await check(d, rows, '2026-03-02T14:00')).toEqual([true, true]);
    await d.runtime.store.setStatus(ref, 'on-hold', { now: berlin('2026-03-02T14:05'), reason: 'part ordered' });
    expect(await check(d, rows, '2026-03-02T14:10')).toEqual([true, true]);
    expect(slaRows(d, ref).map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(await d.runtime.sla.beforeSend({ id: 1, messageRow: 1, kind: 'ack' }, berlin('2026-03-02T14:10'))).toBe(true);
  });

  it.each<[TicketStatus, string]>([
    ['pending', 'ticket is pending'],
    ['resolved', 'ticket is resolved'],
    ['closed', 'ticket is closed'],
  ])('withdraws both once the ticket is %s', async (status, reason) => {
    const { lines, logger } = capture();
    const { d, ref, rows } = await overdue(logger);
    await d.runtime.store.setStatus(ref, status, { now: berlin('2026-03-02T14:00'), reason: null });
    expect(await check(d, rows, '2026-03-02T14:30')).toEqual([false, false]);
    expect(slaRows(d, ref).map((r) => r.status)).toEqual(['withdrawn', 'withdrawn']);
    expect(lines.filter((l) => l.code === 'SLA_NOTICE_WITHDRAWN' || l.code === 'SLA_WARNING_WITHDRAWN')).toEqual([
      expect.objectContaining({ code: 'SLA_NOTICE_WITHDRAWN', ref, target: 'first-response', threshold: '1', reason }),
      expect.objectContaining({ code: 'SLA_WARNING_WITHDRAWN', ref, target: 'first-response', threshold: '100%', reason }),
    ]);
    const detail = await d.runtime.store.ticketDetail(ref);
    expect(detail!.events.filter((e) => e.type.endsWith('-withdrawn')).map((e) => [e.type, e.public, e.detail.reason])).toEqual([
      ['notice-withdrawn', false, reason],
      ['warning-withdrawn', false, reason],
    ]);
    // Withdrawn once: a second look changes nothing and logs nothing.
    expect(await check(d, rows, '2026-03-02T15:00')).toEqual([true, true]);
    expect(lines.filter((l) => String(l.code).endsWith('_WITHDRAWN'))).toHaveLength(2);
    // Not queued again by a later pass, and not counted as sent.
    expect((await d.runtime.sla.tick(berlin('2026-03-03T13:30'))).queued).toEqual([]);
    expect((await d.runtime.sla.status(await d.runtime.store.ticketByRef(ref), berlin('2026-03-03T13:30')))[0]!.noticesSent).toBe(
      0,
    );
  });

  it('withdraws when a longer target moved the deadline past the threshold', async () => {
    const { d, ref, rows } = await overdue();
    const longer = parseConfig(
      slaConfigJson(d.dir, (cfg) => (cfg.sla.policies = [{ ...STANDARD_POLICY, firstResponse: '1d' }])),
      d.dir,
    );
    d.runtime.reload(longer);
    // Any change folds the new target into the ticket's clock.
    await d.runtime.store.setStatus(ref, 'on-hold', { now: berlin('2026-03-02T14:00'), reason: 'part ordered' });
    expect(await check(d, rows, '2026-03-02T14:30')).toEqual([false, false]);
    const reasons = dbOf(d.runtime)
      .prepare('SELECT kind, outcome, reason FROM sla_notices WHERE message_row IS NOT NULL ORDER BY kind')
      .all();
    expect(reasons).toEqual([
      { kind: 'notice', outcome: 'withdrawn', reason: 'the deadline moved: the threshold is not reached any more' },
      { kind: 'warning', outcome: 'withdrawn', reason: 'the deadline moved: the threshold is not reached any more' },
    ]);
  });
});

function capture() {
  const lines: Record<string, any>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { lines, logger };
}

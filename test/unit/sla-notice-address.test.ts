// A delay notice is automatic mail: it follows the acknowledgement to the
// envelope sender (RFC 3834 section 4), never to a Reply-To nobody checked.

import { DateTime } from 'luxon';
import { afterEach, expect, it } from 'vitest';
import { openDesk, outboxOf, type SlaDesk } from './sla-fixture.js';

const berlin = (text: string) => DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();
let desk: SlaDesk | null = null;
afterEach(async () => {
  await desk?.close();
  desk = null;
});

it('sends the delay notice where the acknowledgement went, not to Reply-To', async () => {
  desk = await openDesk(DateTime.fromISO('2026-03-02T10:00', { zone: 'Europe/Berlin' }).toISO()!);
  const ref = await desk.receive({
    subject: 'Printer on fire',
    messageId: 'n1@customer.example',
    headers: { 'Return-Path': '<jane@customer.example>', 'Reply-To': 'victim@victim.example' },
  });
  const queued = (await desk.runtime.sla.tick(berlin('2026-03-02T14:00'))).queued.filter((q) => q.kind === 'delay-notice');
  expect(queued.map((q) => q.to)).toEqual(['jane@customer.example']);
  expect(
    outboxOf(desk, ref)
      .map((m) => `${m.kind} ${m.to}`)
      .sort(),
  ).toEqual(['ack jane@customer.example', 'delay-notice jane@customer.example', 'staff-warning team@example.com']);
});

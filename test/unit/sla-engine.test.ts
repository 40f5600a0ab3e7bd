import { DateTime } from 'luxon';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { composeAgentReply } from '../../src/compose/compose-mail.js';
import type { TicketStatus } from '../../src/core/types.js';
import { loadNamedQueries } from '../../src/store/named-queries.js';
import { dbOf } from '../harness/sqlite-store.js';
import { openDesk, outboxOf, type SlaDesk } from './sla-fixture.js';

/** Berlin wall time as epoch ms. */
function berlin(text: string): number {
  return DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();
}

const MONDAY_10 = DateTime.fromISO('2026-03-02T10:00', { zone: 'Europe/Berlin' }).toISO()!;

let desk: SlaDesk | null = null;
afterEach(async () => {
  await desk?.close();
  desk = null;
});

async function open(opts: Parameters<typeof openDesk>[1] = {}): Promise<SlaDesk> {
  desk = await openDesk(MONDAY_10, opts);
  return desk;
}

function tick(d: SlaDesk, at: string) {
  return d.runtime.sla.tick(berlin(at));
}

/** "kind target threshold" of what a tick queued. */
async function queuedBy(d: SlaDesk, at: string): Promise<string[]> {
  return (await tick(d, at)).queued.map((q) => `${q.kind} ${q.target} ${q.threshold}`);
}

async function status(d: SlaDesk, ref: string) {
  const t = await d.runtime.store.ticketByRef(ref);
  return (await d.runtime.sla.status(t!, d.clock.now().getTime()))[0]!;
}

async function reply(d: SlaDesk, ref: string, at: string): Promise<void> {
  d.clock.set(new Date(berlin(at)));
  const rt = d.runtime;
  await rt.store.addAgentReply(
    ref,
    (t, statusUrl, thread) =>
      composeAgentReply(
        { config: rt.config, mailbox: rt.mailbox(t.mailbox), templates: rt.templates },
        t,
        'We are on it.',
        statusUrl,
        thread,
      ),
    await rt.pipeline.policy(),
    berlin(at),
  );
}

async function setStatus(d: SlaDesk, ref: string, s: TicketStatus, at: string, reason?: string): Promise<void> {
  await d.runtime.store.setStatus(ref, s, { now: berlin(at), reason: reason ?? null });
}

function logCapture() {
  const lines: Record<string, any>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, codes: () => lines.map((l) => l.code as string), lines };
}

describe('delay notices and staff warnings', () => {
  it('sends each threshold exactly once, across restarts, at most max notices', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });

    expect(await queuedBy(d, '2026-03-02T13:11')).toEqual([]);
    expect(await queuedBy(d, '2026-03-02T13:12')).toEqual(['staff-warning first-response 80%']);
    await d.restart();
    expect(await queuedBy(d, '2026-03-02T13:12')).toEqual([]);
    expect(await queuedBy(d, '2026-03-02T14:00')).toEqual(['delay-notice first-response 1', 'staff-warning first-response 100%']);
    expect(await queuedBy(d, '2026-03-02T14:00')).toEqual([]);
    await d.restart();
    expect(await queuedBy(d, '2026-03-02T16:59')).toEqual([]);
    // 24 business hours later: three office days.
    expect(await queuedBy(d, '2026-03-05T13:59')).toEqual([]);
    expect(await queuedBy(d, '2026-03-05T14:00')).toEqual(['delay-notice first-response 2']);
    await d.restart();
    expect(await queuedBy(d, '2026-03-10T14:00')).toEqual(['delay-notice first-response 3']);
    expect(await queuedBy(d, '2026-03-10T14:00')).toEqual([]);
    // max 3: nothing more, however long the customer waits (until 80% of resolution, Wednesday 11:36).
    expect(await queuedBy(d, '2026-03-11T11:35')).toEqual([]);
    expect(await queuedBy(d, '2026-03-11T11:36')).toEqual(['staff-warning resolution 80%']);

    const out = outboxOf(d, ref);
    expect(out.map((m) => `${m.kind} ${m.to}`)).toEqual([
      'ack jane@customer.example',
      'staff-warning team@example.com',
      'delay-notice jane@customer.example',
      'staff-warning team@example.com',
      'delay-notice jane@customer.example',
      'delay-notice jane@customer.example',
      'staff-warning team@example.com',
    ]);
    // 58 business hours by Wednesday noon of the next week.
    d.clock.set(new Date(berlin('2026-03-11T12:00')));
    const s = await status(d, ref);
    expect(s).toMatchObject({ policy: 'standard', breached: ['first-response'], noticesSent: 3 });
    expect(s.targets?.['first-response']).toMatchObject({ running: true, leftMs: 0, used: '2 days and 10 hours' });
  });

  it('threads the notice into the conversation, marks it auto-generated and puts the reference in the subject', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    await setStatus(d, ref, 'on-hold', '2026-03-02T11:00', 'waiting for a replacement part');
    await tick(d, '2026-03-02T14:00');

    // The 80% warning was passed in the same pass as the breach: only the 100% one goes out.
    const [ack, notice, warning] = outboxOf(d, ref);
    expect(notice?.kind).toBe('delay-notice');
    expect(notice?.subject).toBe(`[${ref}] Sorry for the wait: Printer on fire`);
    expect(notice?.headers['Auto-Submitted']).toBe('auto-generated');
    expect(notice?.headers.inReplyTo).toBe(ack?.messageId);
    expect(notice?.headers.references).toEqual(['q1@customer.example', ack?.messageId]);
    expect(notice?.text).toContain('has been waiting for 4 hours');
    expect(notice?.text).toContain('Where it stands: on hold.');
    expect(notice?.text).toContain('It is on hold because: waiting for a replacement part.');
    // No history yet: the estimate is the target, shifted from Monday 14:00 to Tuesday 10:00.
    expect(notice?.text).toContain('We aim to take the next step within 20 hours.');
    // The same status link as in the acknowledgement.
    const link = /https:\/\/help\.example\.com\/t\/\S+/;
    expect(notice?.text.match(link)?.[0]).toBe(ack?.text.match(link)?.[0]);

    expect(warning?.kind).toBe('staff-warning');
    expect(warning?.subject).toBe(`[${ref}] SLA warning: 100% of first-response time used: Printer on fire`);
    expect(warning?.headers.references).toEqual([]);
    expect(warning?.text).toMatch(/Due: {7}Mar 2, 2026, 1:00\sPM UTC/);
  });

  it('sends no more first-response notices once the agent replied', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    expect(await queuedBy(d, '2026-03-02T14:00')).toContain('delay-notice first-response 1');
    await reply(d, ref, '2026-03-02T14:30');

    expect(await queuedBy(d, '2026-03-05T14:00')).toEqual([]);
    expect(await queuedBy(d, '2026-03-10T14:00')).toEqual([]);
    const s = await status(d, ref);
    expect(s.targets?.['first-response']).toMatchObject({
      metAt: new Date(berlin('2026-03-02T14:30')).toISOString(),
      running: false,
    });
    expect(s.firstResponseDue).toBeNull();
    // Met, but late.
    expect(s.breached).toEqual(['first-response']);
    expect(outboxOf(d, ref).filter((m) => m.kind === 'delay-notice')).toHaveLength(1);
  });

  it('a reply in time means no notice at all, and the resolution target takes over', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    await reply(d, ref, '2026-03-02T11:00');
    expect(await queuedBy(d, '2026-03-02T18:00')).toEqual([]);
    const s = await status(d, ref);
    expect(s.breached).toEqual([]);
    expect(s.nextDue).toBe(new Date(berlin('2026-03-11T11:36')).toISOString());
    // 80% of resolution, then the resolution breach with its own notice.
    expect(await queuedBy(d, '2026-03-11T11:36')).toEqual(['staff-warning resolution 80%']);
    expect(await queuedBy(d, '2026-03-13T10:00')).toEqual(['delay-notice resolution 1', 'staff-warning resolution 100%']);
  });

  it('sends nothing to a pending ticket: its clock is paused', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    await setStatus(d, ref, 'pending', '2026-03-02T11:00');
    expect((await status(d, ref)).nextDue).toBeNull();
    expect((await tick(d, '2026-03-20T12:00')).tickets).toBe(0);
    expect(outboxOf(d, ref).map((m) => m.kind)).toEqual(['ack']);

    // Back to open on Wednesday: one hour was used, three are left.
    await setStatus(d, ref, 'open', '2026-03-04T09:00');
    const s = await status(d, ref);
    expect(s.firstResponseDue).toBe(new Date(berlin('2026-03-04T12:00')).toISOString());
    expect(await queuedBy(d, '2026-03-04T12:00')).toContain('delay-notice first-response 1');
  });

  it('sends nothing to a closed or resolved ticket', async () => {
    const d = await open();
    const closed = await d.receive({ subject: 'One', messageId: 'q1@customer.example' });
    const resolved = await d.receive({ from: 'Bob <bob@customer.example>', subject: 'Two', messageId: 'q2@customer.example' });
    await setStatus(d, closed, 'closed', '2026-03-02T11:00');
    await setStatus(d, resolved, 'resolved', '2026-03-02T11:00');
    expect(await tick(d, '2026-03-20T12:00')).toMatchObject({ tickets: 0, queued: [] });
    expect(await d.runtime.sla.nextDue()).toBeNull();
  });

  it('records but never sends a notice to a suppressed (bounced) requester; staff are still warned', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    dbOf(d.runtime)
      .prepare(loadNamedQueries('sqlite').get('insert-suppression')!)
      .run('jane@customer.example', 'bounced', berlin('2026-03-02T11:00'));

    const r = await tick(d, '2026-03-02T14:00');
    expect(r.queued.map((q) => q.kind)).toEqual(['staff-warning']);
    expect(r.skipped.filter((s) => s.outcome === 'skipped')).toEqual([
      expect.objectContaining({ kind: 'notice', threshold: '1', reason: 'requester is suppressed (bounced)' }),
    ]);
    // Recorded: a later tick neither sends it nor looks at it again.
    expect((await tick(d, '2026-03-02T15:00')).tickets).toBe(0);
    expect((await tick(d, '2026-03-05T14:00')).skipped.map((s) => s.threshold)).toEqual(['2']);
    expect(outboxOf(d, ref).filter((m) => m.kind === 'delay-notice')).toEqual([]);
    expect((await status(d, ref)).noticesSent).toBe(0);
  });

  it('sends no notice to a ticket whose acknowledgement was suppressed', async () => {
    const d = await open();
    const ref = await d.receive({
      subject: 'Newsletter reply',
      messageId: 'q1@customer.example',
      headers: { Precedence: 'bulk' },
    });
    expect(outboxOf(d, ref)).toEqual([]);
    const r = await tick(d, '2026-03-02T14:00');
    expect(r.queued.map((q) => q.kind)).toEqual(['staff-warning']);
    expect(r.skipped.filter((s) => s.kind === 'notice').map((s) => s.reason)).toEqual([
      'no automatic mail to this requester (acknowledgement was suppressed)',
    ]);
  });

  it('skips a warning with a log line when no staff address is configured', async () => {
    const logs = logCapture();
    const d = await open({ logger: logs.logger, patch: (cfg) => delete cfg.sla.policies[0].staffAddress });
    await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    const r = await tick(d, '2026-03-02T14:00');
    expect(r.queued.map((q) => q.kind)).toEqual(['delay-notice']);
    expect(r.skipped.map((s) => `${s.kind} ${s.threshold} ${s.outcome}: ${s.reason}`)).toEqual([
      'warning 80% superseded: a later threshold was due at the same time',
      'warning 100% skipped: no staff address configured',
    ]);
    expect(logs.codes()).toEqual(
      expect.arrayContaining(['SLA_BREACHED', 'SLA_NOTICE_QUEUED', 'SLA_THRESHOLD_SKIPPED', 'SLA_TICK']),
    );
    expect(logs.lines.find((l) => l.code === 'SLA_THRESHOLD_SKIPPED')).toMatchObject({
      kind: 'warning',
      reason: 'no staff address configured',
    });
  });

  it('logs stable codes for what a pass did', async () => {
    const logs = logCapture();
    const d = await open({ logger: logs.logger });
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    await tick(d, '2026-03-02T14:00');
    const sla = logs.lines.filter((l) => String(l.code).startsWith('SLA_'));
    expect(sla.map((l) => l.code)).toEqual(['SLA_BREACHED', 'SLA_NOTICE_QUEUED', 'SLA_WARNING_QUEUED', 'SLA_TICK']);
    expect(sla[0]).toMatchObject({ ref, policy: 'standard', target: 'first-response' });
    expect(sla[3]).toMatchObject({ tickets: 1, queued: 2, breached: 1 });
  });

  it('a dry run reports what would be sent and records nothing', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    const dry = await d.runtime.sla.tick(berlin('2026-03-02T14:00'), { dryRun: true });
    expect(dry.queued.map((q) => q.kind)).toEqual(['delay-notice', 'staff-warning']);
    expect(outboxOf(d, ref).map((m) => m.kind)).toEqual(['ack']);
    expect(await queuedBy(d, '2026-03-02T14:00')).toEqual(['delay-notice first-response 1', 'staff-warning first-response 100%']);
  });

  it('restarts the resolution clock when the customer writes to a resolved ticket', async () => {
    const d = await open();
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    await reply(d, ref, '2026-03-02T11:00');
    await setStatus(d, ref, 'resolved', '2026-03-03T10:00');
    expect((await status(d, ref)).resolutionDue).toBeNull();

    d.clock.set(new Date(berlin('2026-03-05T09:00')));
    const [ack] = outboxOf(d, ref);
    await d.receive({ subject: `Re: [${ref}] Printer on fire`, messageId: 'q2@customer.example', inReplyTo: ack!.messageId });
    const s = await status(d, ref);
    expect(s.status).toBe('open');
    expect(s.resolutionCycle).toBe(2);
    expect(s.targets?.resolution).toMatchObject({ usedMs: 0, running: true });
    expect(s.resolutionDue).toBe(new Date(berlin('2026-03-17T17:00')).toISOString());
    expect(await d.runtime.sla.promise((await d.runtime.store.ticketByRef(ref))!)).toEqual({
      target: 'resolution',
      due: new Date(berlin('2026-03-17T17:00')),
    });
  });
});

describe('the honest estimate', () => {
  it('the acknowledgement promises the target, shifted onto office hours, until there is history', async () => {
    const d = await openDesk(DateTime.fromISO('2026-03-06T16:00', { zone: 'Europe/Berlin' }).toISO()!);
    desk = d;
    const ref = await d.receive({ subject: 'Friday afternoon', messageId: 'f1@customer.example' });
    // Friday 16:00 + 4 business hours is Monday 12:00.
    expect(outboxOf(d, ref)[0]?.text).toContain('We aim to send a first reply within 2 days and 20 hours.');
  });

  it('uses the median first response of the last 7 days once there are five', async () => {
    const d = await open();
    // Five tickets answered after 1h, 1h, 2h, 3h and 3h of business time.
    const answered = [1, 1, 2, 3, 3];
    for (const [i, hours] of answered.entries()) {
      d.clock.set(new Date(berlin('2026-03-02T09:00')));
      const ref = await d.receive({ from: `c${i}@customer.example`, subject: `Old ${i}`, messageId: `old${i}@customer.example` });
      await reply(d, ref, `2026-03-02T${String(9 + hours).padStart(2, '0')}:00`);
    }
    d.clock.set(new Date(berlin('2026-03-03T10:00')));
    const ref = await d.receive({ subject: 'New', messageId: 'new@customer.example' });
    expect(outboxOf(d, ref)[0]?.text).toContain('We aim to send a first reply within 2 hours.');

    const r = await tick(d, '2026-03-03T14:00');
    expect(r.queued.find((q) => q.kind === 'delay-notice')).toMatchObject({ estimateSource: 'history' });
    expect(outboxOf(d, ref).find((m) => m.kind === 'delay-notice')?.text).toContain(
      'Judging by similar requests, we expect the next step within 2 hours.',
    );
    // History older than 7 days no longer counts.
    expect(
      (await d.runtime.sla.estimate(d.runtime.sla.policies().named('standard')!, 'first-response', berlin('2026-03-10T10:00')))
        .source,
    ).toBe('target');
  });
});

describe('tickets without a policy', () => {
  it('get no SLA state, no estimate and no promise', async () => {
    const d = await open({ patch: (cfg) => (cfg.sla.policies[0].match = { mailbox: 'support', priority: 'urgent' }) });
    const ref = await d.receive({ subject: 'Printer on fire', messageId: 'q1@customer.example' });
    expect(outboxOf(d, ref)[0]?.text).not.toContain('We aim to send a first reply');
    expect(await status(d, ref)).toMatchObject({ policy: null, firstResponseDue: null, targets: null });
    expect(await d.runtime.sla.promise((await d.runtime.store.ticketByRef(ref))!)).toBeNull();
    expect(await d.runtime.sla.nextDue()).toBeNull();
  });
});

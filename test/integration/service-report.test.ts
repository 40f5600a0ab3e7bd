// `ticketd report` on a seeded week whose figures are worked out by hand
// below: tickets taken by the real pipeline into a real SQLite store, staff
// actions through the Runtime at set times, business hours Monday to Friday
// 09:00-17:00 UTC; then the same figures from the command line (--json,
// --csv, --queue) and the counts on /metrics.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestMessages } from '../../src/sources/pipe/ingest.js';
import { createMetrics } from '../../src/web/metrics.js';
import type { ServiceReport } from '../../src/sla/service-report.js';
import { rateTicket } from '../../src/store/ratings.js';
import { engineOf, recordsOf } from '../harness/sqlite-store.js';
import { customerMail, startTicketdEnv, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const H = 3_600_000;
let env: TicketdEnv;
let td: InProcess;
const refs: Record<string, string> = {};

const at = (iso: string) => Date.parse(iso);

async function open(name: string, when: string, subject: string) {
  td.clock.set(when);
  const [r] = await ingestMessages(td.runtime.pipeline, 'support', [
    Buffer.from(
      customerMail({ subject, messageId: `report-${name}@customer.example`, from: `${name} <${name}@customer.example>` }),
    ),
  ]);
  expect(r!.outcome).toBe('taken');
  refs[name] = r!.ref!;
}

/** The requester's rating, stored by the rule the status page's form uses. */
async function rate(name: string, score: number, comment: string, when: string): Promise<void> {
  const id = await idOf(name);
  const engine = engineOf(td.runtime);
  const rated = await engine.transaction((tx) => rateTicket(tx, id, { score, comment }, at(when)));
  expect(rated.ok).toBe(true);
}

async function idOf(name: string): Promise<number> {
  return (await td.runtime.store.ticketByRef(refs[name]!))!.id;
}

beforeAll(async () => {
  env = await startTicketdEnv();
  env.writeConfig((c) => {
    c.mailboxes[0].defaultQueue = 'Front desk';
    c.queues = [
      { name: 'Front desk', staff: ['sam@example.com', 'kim@example.com'] },
      { name: 'Hardware', staff: ['tom@example.com'] },
    ];
    c.routing = [{ name: 'machines', match: { subject: 'projector' }, set: { queue: 'Hardware' } }];
    c.calendars = {
      office: {
        timezone: 'UTC',
        hours: { mon: '09:00-17:00', tue: '09:00-17:00', wed: '09:00-17:00', thu: '09:00-17:00', fri: '09:00-17:00' },
      },
    };
    c.sla = {
      policies: [{ name: 'standard', match: { mailbox: 'support' }, firstResponse: '4h', resolution: '16h', calendar: 'office' }],
    };
  });
  td = await env.open();
  const rt = td.runtime;
  const records = recordsOf(rt);

  // E: opened the Friday before the window, resolved inside it (Monday 10:00).
  await open('e', '2026-10-30T10:00:00Z', 'Invoice question');
  await rt.addAgentReply(refs.e!, 'Here it is.', at('2026-10-30T11:00:00Z'));
  await rt.resolve(refs.e!, null, at('2026-11-02T10:00:00Z'));

  // A (Front desk): first reply after 2h, resolved after 6h, rated 5; the warranty answer used.
  await open('a', '2026-11-02T09:00:00Z', 'Login broken');
  await rt.addAgentReply(refs.a!, 'Try again now.', at('2026-11-02T11:00:00Z'));
  await records.event(await idOf('a'), 'answer_used', false, { name: 'warranty', by: 'sam' }, at('2026-11-02T11:00:00Z'));
  await rt.resolve(refs.a!, null, at('2026-11-02T15:00:00Z'));
  await rate('a', 5, '', '2026-11-02T16:00:00Z');

  // C: opened Monday 10:00 in Front desk, handed to Hardware, then to Tom; never answered.
  await open('c', '2026-11-02T10:00:00Z', 'Strange noise');
  await rt.handoff(refs.c!, { queue: 'hardware' }, 'Sounds mechanical.', 'sam', at('2026-11-02T10:30:00Z'));
  await rt.handoff(refs.c!, { owner: 'tom@example.com' }, 'Yours, Tom.', 'sam', at('2026-11-02T11:00:00Z'));

  // B (Front desk): opened Monday 16:00, first reply Tuesday 10:00 (1h + 1h), handed from Sam to Kim,
  // resolved Wednesday 12:00, reopened by the customer at 13:00, resolved again at 14:00
  // (1h + 8h + 5h = 14h); rated 2, then again 3 with a comment.
  await open('b', '2026-11-02T16:00:00Z', 'Password reset');
  await rt.assignOwner(refs.b!, 'sam@example.com', null, 'sam', at('2026-11-02T16:10:00Z'));
  await rt.addAgentReply(refs.b!, 'Reset sent.', at('2026-11-03T10:00:00Z'));
  await rt.handoff(refs.b!, { owner: 'kim@example.com' }, 'Kim knows the account.', 'sam', at('2026-11-03T11:00:00Z'));
  await rt.resolve(refs.b!, null, at('2026-11-04T12:00:00Z'));
  td.clock.set('2026-11-04T13:00:00Z');
  const [reopen] = await ingestMessages(rt.pipeline, 'support', [
    Buffer.from(
      customerMail({
        subject: `Re: [${refs.b}] Password reset`,
        messageId: 'report-b-2@customer.example',
        from: 'b <b@customer.example>',
      }),
    ),
  ]);
  expect(reopen!.reason).toBe('reopened');
  await rt.resolve(refs.b!, null, at('2026-11-04T14:00:00Z'));
  await rate('b', 2, 'Slow.', '2026-11-04T15:00:00Z');
  await rate('b', 3, 'Took two tries', '2026-11-04T16:00:00Z');

  // D (Hardware by routing): opened Tuesday 09:00, first reply at 15:00 (6h: late), resolved Thursday
  // 09:00 (8h + 8h = 16h: exactly on time is on time); rated 4; two answers used.
  await open('d', '2026-11-03T09:00:00Z', 'Projector dead');
  await rt.addAgentReply(refs.d!, 'A technician comes.', at('2026-11-03T15:00:00Z'));
  await records.event(await idOf('d'), 'answer_used', false, { name: 'warranty', by: 'tom' }, at('2026-11-03T15:00:00Z'));
  await records.event(await idOf('d'), 'answer_used', false, { name: 'spare-part-delay', by: 'tom' }, at('2026-11-03T15:00:00Z'));
  await rt.resolve(refs.d!, null, at('2026-11-05T09:00:00Z'));
  await rate('d', 4, 'Fast fix', '2026-11-05T10:00:00Z');
}, 120_000);

afterAll(async () => {
  await td?.close();
  await env?.stop();
});

const SINCE = at('2026-11-02T00:00:00Z');
const NOW = at('2026-11-06T12:00:00Z');

const frontDesk = {
  queue: 'Front desk',
  opened: 2,
  // A, B (once, though resolved twice) and E (opened before the window, resolved in it)
  resolved: 3,
  firstResponse: { count: 2, medianMs: 2 * H, p90Ms: 2 * H },
  resolution: { count: 2, medianMs: 10 * H, p90Ms: 14 * H },
  breached: { firstResponse: { count: 0, of: 2, share: 0 }, resolution: { count: 0, of: 2, share: 0 } },
  handoffs: { total: 1, mean: 0.5, distribution: { 0: 1, 1: 1 } },
  reopened: { count: 1, of: 2, share: 0.5 },
  ratings: { count: 2, average: 4, comments: [{ ref: '', score: 3, comment: 'Took two tries', at: '2026-11-04T16:00:00.000Z' }] },
  answersUsed: { warranty: 1 },
};
const hardware = {
  queue: 'Hardware',
  opened: 2,
  resolved: 1,
  firstResponse: { count: 1, medianMs: 6 * H, p90Ms: 6 * H },
  resolution: { count: 1, medianMs: 16 * H, p90Ms: 16 * H },
  // C still waits (34h of business time by Friday noon) on both; D answered late and resolved on the dot.
  breached: { firstResponse: { count: 2, of: 2, share: 1 }, resolution: { count: 1, of: 2, share: 0.5 } },
  handoffs: { total: 2, mean: 1, distribution: { 0: 1, 2: 1 } },
  reopened: { count: 0, of: 2, share: 0 },
  ratings: { count: 1, average: 4, comments: [{ ref: '', score: 4, comment: 'Fast fix', at: '2026-11-05T10:00:00.000Z' }] },
  answersUsed: { 'spare-part-delay': 1, warranty: 1 },
};

function expected(): ServiceReport {
  frontDesk.ratings.comments[0]!.ref = refs.b!;
  hardware.ratings.comments[0]!.ref = refs.d!;
  return {
    since: '2026-11-02T00:00:00.000Z',
    until: '2026-11-06T12:00:00.000Z',
    queues: [frontDesk, hardware],
    total: {
      queue: null,
      opened: 4,
      resolved: 4,
      firstResponse: { count: 3, medianMs: 2 * H, p90Ms: 6 * H },
      resolution: { count: 3, medianMs: 14 * H, p90Ms: 16 * H },
      breached: { firstResponse: { count: 2, of: 4, share: 0.5 }, resolution: { count: 1, of: 4, share: 0.25 } },
      handoffs: { total: 3, mean: 0.75, distribution: { 0: 2, 1: 1, 2: 1 } },
      reopened: { count: 1, of: 4, share: 0.25 },
      ratings: { count: 3, average: 4, comments: [frontDesk.ratings.comments[0]!, hardware.ratings.comments[0]!] },
      answersUsed: { 'spare-part-delay': 1, warranty: 2 },
    },
  };
}

describe('the service report', () => {
  it('gives the hand-computed figures per queue and in total', async () => {
    const report = await td.runtime.sla.report({ since: SINCE, queue: null }, NOW);
    expect(report).toEqual(expected());
  });

  it('narrows to one queue, named in any case', async () => {
    const report = await td.runtime.sla.report({ since: SINCE, queue: 'hardware' }, NOW);
    expect(report.queues).toEqual([hardware]);
    expect(report.total).toEqual({ ...hardware, queue: null });
  });

  it('prints the handoff distribution, the answers used and the comments per queue in the text report too', {
    timeout: 60_000,
  }, async () => {
    const text = await env.cli(['report', '--since', '2026-11-02']);
    expect(text.code, text.stderr).toBe(0);
    // The same figures as the JSON's queues and total above (and the CSV's columns).
    expect(text.stdout.slice(text.stdout.indexOf('\nHandoffs per ticket'))).toBe(
      [
        '',
        'Handoffs per ticket (handoffs: tickets) and answers used:',
        'queue       handoffs     answers used',
        'Front desk  0:1 1:1      warranty:1',
        'Hardware    0:1 2:1      spare-part-delay:1 warranty:1',
        '(all)       0:2 1:1 2:1  spare-part-delay:1 warranty:2',
        '',
        'Comments:',
        '  Front desk',
        `    ${refs.b} 3/5 2026-11-04T16:00:00.000Z: Took two tries`,
        '  Hardware',
        `    ${refs.d} 4/5 2026-11-05T10:00:00.000Z: Fast fix`,
        '',
      ].join('\n'),
    );
  });

  it('prints the same from the command line as JSON and CSV', { timeout: 60_000 }, async () => {
    const json = await env.cli(['report', '--since', '2026-11-02', '--json']);
    expect(json.code, json.stderr).toBe(0);
    // The command line reports as of the real now: C is still overdue, nothing else changes.
    expect({ ...JSON.parse(json.stdout), until: '2026-11-06T12:00:00.000Z' }).toEqual(expected());

    const csv = await env.cli(['report', '--since', '2026-11-02', '--csv']);
    expect(csv.code, csv.stderr).toBe(0);
    const lines = csv.stdout.split('\r\n');
    expect(lines[0]).toBe(
      'queue,opened,resolved,first_response_count,first_response_median_h,first_response_p90_h,resolution_count,resolution_median_h,resolution_p90_h,first_response_breached,first_response_breached_share,resolution_breached,resolution_breached_share,sla_tickets,handoffs,handoffs_mean,handoff_distribution,reopened,reopen_rate,ratings,rating_average,answers_used',
    );
    expect(lines.slice(1)).toEqual([
      'Front desk,2,3,2,2.00,2.00,2,10.00,14.00,0,0.000,0,0.000,2,1,0.500,0:1 1:1,1,0.500,2,4.000,warranty:1',
      'Hardware,2,1,1,6.00,6.00,1,16.00,16.00,2,1.000,1,0.500,2,2,1.000,0:1 2:1,0,0.000,1,4.000,spare-part-delay:1 warranty:1',
      '(all),4,4,3,2.00,6.00,3,14.00,16.00,2,0.500,1,0.250,4,3,0.750,0:2 1:1 2:1,1,0.250,3,4.000,spare-part-delay:1 warranty:2',
      '',
    ]);

    const text = await env.cli(['report', '--since', '2026-11-02', '--queue', 'HARDWARE']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /^Hardware +2 +1 +6\.00 \/ 6\.00 +16\.00 \/ 16\.00 +2\/2 100% +1\/2 50% +1\.00 +0\/2 0% +4\.00 \(1\)$/m,
    );
    expect(text.stdout).toContain(`${refs.d} 4/5 2026-11-05T10:00:00.000Z: Fast fix`);

    expect((await env.cli(['report', '--queue', 'Kitchen'])).code).toBe(64);
    expect((await env.cli(['report', '--since', 'last week'])).code).toBe(64);
  });

  it('shows the counts on /metrics as gauges, over all time', async () => {
    const metrics = createMetrics({
      outboxCounts: () => td.runtime.store.outboxCounts(),
      lastPolls: () => [],
      serviceCounts: () => td.runtime.sla.counts(),
    });
    const text = await metrics.registry.metrics();
    const value = (series: string) =>
      Number(new RegExp(`^${series.replace(/[{}"()[\]]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    // E, opened before the window, counts here.
    expect(value('ticketd_queue_tickets_opened{queue="Front desk"}')).toBe(3);
    expect(value('ticketd_queue_tickets_opened{queue="Hardware"}')).toBe(2);
    expect(value('ticketd_queue_tickets_resolved{queue="Front desk"}')).toBe(3);
    expect(value('ticketd_queue_handoffs{queue="Hardware"}')).toBe(2);
    expect(value('ticketd_queue_tickets_reopened{queue="Front desk"}')).toBe(1);
    expect(value('ticketd_queue_ratings{queue="Front desk"}')).toBe(2);
    expect(value('ticketd_queue_rating_score_sum{queue="Front desk"}')).toBe(8);
    expect(value('ticketd_answers_used{answer="warranty",queue="Hardware"}')).toBe(1);
  });
});

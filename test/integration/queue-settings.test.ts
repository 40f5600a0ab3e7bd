// A queue's `notify` and `sla` settings end to end, against real Dovecot and
// a capturing SMTP server, with staff working by email: the notify address
// (and nobody else) receives the queue's new-ticket and handoff notices, the
// queue's SLA policy is the ticket's, a staff member's emailed reply meets the
// first-response target, and a handoff to a queue with another policy puts
// that policy's targets on the ticket while the time already used still
// counts (a first response already given is judged by the new target too). The in-process daemon's clock is set for each step, so every figure
// of the SLA clock is exact.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, staffReply, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const JANE = 'jane@customer.example';
const SAM = 'sam@example.com';
const TOM = 'tom@example.com';
const DESK_LIST = 'desk@example.com';
const HARDWARE_LIST = 'hardware-team@example.com';

let env: TicketdEnv;
let td: InProcess;
/** Two hours ago: every step happens at a known offset from it, in the past of the real clock. */
const T0 = Date.now() - 2 * HOUR;

beforeAll(async () => {
  env = await startTicketdEnv();
  env.writeConfig((c) => {
    c.mailboxes[0].defaultQueue = 'Front desk';
    c.queues = [
      { name: 'Front desk', staff: [SAM], notify: DESK_LIST, sla: 'desk' },
      { name: 'Hardware', staff: [TOM], notify: HARDWARE_LIST, sla: 'hardware' },
    ];
    c.sla = {
      policies: [
        // Matches every ticket by its own rules, so only the queue's `sla` can choose the other two.
        { name: 'general', match: {}, firstResponse: '8h', resolution: '40h', calendar: '24x7' },
        { name: 'desk', match: { priority: 'urgent' }, firstResponse: '4h', resolution: '16h', calendar: '24x7' },
        { name: 'hardware', match: { priority: 'urgent' }, firstResponse: '1h', resolution: '8h', calendar: '24x7' },
      ],
    };
  });
  td = await env.open();
}, 60_000);
afterAll(async () => {
  await td?.close();
  await env?.stop();
});

/** Takes what the mailbox holds and sends what is due, with the daemon's clock at `at`. */
async function cycleAt(at: number): Promise<void> {
  td.clock.set(new Date(at));
  await td.cycle();
}

/** The SLA clock of a ticket as `ticketd sla status --json` gives it, read at `at`. */
async function slaAt(ref: string, at: number) {
  const ticket = await td.runtime.store.ticketByRef(ref);
  return (await td.runtime.sla.status(ticket, at))[0]!;
}

const iso = (at: number) => new Date(at).toISOString();

/** Opens a ticket at `at` and returns its reference and the notice its queue got. */
async function openTicket(messageId: string, at: number): Promise<{ ref: string; notice: CapturedMessage }> {
  env.smtp.clear();
  await env.dovecot.appendMessage(SUPPORT, 'INBOX', customerMail({ subject: 'Projector dead', messageId, body: 'No light.' }));
  await cycleAt(at);
  const mails = await env.smtp.waitFor(2);
  expect(mails.map((m) => m.envelope.to).sort()).toEqual([[DESK_LIST], [JANE]]);
  const notice = mails.find((m) => m.envelope.to[0] === DESK_LIST)!;
  return { ref: /\[(ACME-\w{6})\]/.exec(notice.parsed.subject!)![1]!, notice };
}

describe('a queue’s notify address and SLA policy', () => {
  let ref = '';
  let notice: CapturedMessage;

  it('tells the notify address, and only it, of a new ticket; the queue’s policy is the ticket’s', async () => {
    ({ ref, notice } = await openTicket('qs-1@customer.example', T0));
    expect(notice.parsed.subject).toBe(`[${ref}] New in Front desk: Projector dead`);
    // Not Sam: the queue's notify address is told instead of each of its staff.
    expect(env.smtp.messages.flatMap((m) => m.envelope.to)).not.toContain(SAM);
    const sla = await slaAt(ref, T0);
    expect(sla.policy).toBe('desk');
    expect(sla.targets!['first-response']).toMatchObject({ targetMs: 4 * HOUR, due: iso(T0 + 4 * HOUR), running: true });
    expect(sla.targets!.resolution).toMatchObject({ targetMs: 16 * HOUR, due: iso(T0 + 16 * HOUR) });
  });

  it('meets the first-response target with a staff member’s emailed reply', async () => {
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, { from: `Sam <${SAM}>`, messageId: 'qs-sam-1@example.com', body: 'Hello Jane, we are on it.' }),
    );
    await cycleAt(T0 + 75 * MIN);
    const [reply] = await env.smtp.waitFor(1);
    expect(reply!.envelope.to).toEqual([JANE]);
    const sla = await slaAt(ref, T0 + 75 * MIN);
    expect(sla.targets!['first-response']).toMatchObject({
      metAt: iso(T0 + 75 * MIN),
      usedMs: 75 * MIN,
      running: false,
      due: null,
      breached: false,
    });
    // The resolution clock goes on.
    expect(sla.targets!.resolution).toMatchObject({ running: true, metAt: null, due: iso(T0 + 16 * HOUR) });
    expect(sla.breached).toEqual([]);
  });

  it('mails a handoff to the receiving queue’s notify address; that queue’s policy applies from then on', async () => {
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, { from: SAM, messageId: 'qs-sam-2@example.com', body: '#assign hardware lamp socket, please look' }),
    );
    await cycleAt(T0 + 90 * MIN);
    const mails = await env.smtp.waitFor(1);
    expect(mails.map((m) => m.envelope.to)).toEqual([[HARDWARE_LIST]]);
    expect(mails[0]!.parsed.subject).toBe(`[${ref}] Handed to Hardware: Projector dead`);
    const sla = await slaAt(ref, T0 + 90 * MIN);
    expect(sla.policy).toBe('hardware');
    // The first response stays given when it was, but is judged against the new target: 75 minutes
    // were on time for the Front desk's 4 hours and are late for Hardware's 1 hour.
    expect(sla.targets!['first-response']).toMatchObject({
      targetMs: HOUR,
      usedMs: 75 * MIN,
      metAt: iso(T0 + 75 * MIN),
      breached: true,
    });
    expect(sla.breached).toEqual(['first-response']);
    // The 90 minutes already used count against the new 8 hours: due 6.5 hours after the handoff.
    expect(sla.targets!.resolution).toMatchObject({
      targetMs: 8 * HOUR,
      usedMs: 90 * MIN,
      due: iso(T0 + 8 * HOUR),
      running: true,
    });
  });

  it('judges a first response not yet given against the new queue’s shorter target, counting the wait so far', async () => {
    const second = await openTicket('qs-2@customer.example', T0);
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(second.notice, { from: SAM, messageId: 'qs-sam-3@example.com', body: '#assign hardware no light at all' }),
    );
    await cycleAt(T0 + 30 * MIN);
    expect((await env.smtp.waitFor(1)).map((m) => m.envelope.to)).toEqual([[HARDWARE_LIST]]);
    const atHandoff = await slaAt(second.ref, T0 + 30 * MIN);
    expect(atHandoff.policy).toBe('hardware');
    expect(atHandoff.targets!['first-response']).toMatchObject({ targetMs: HOUR, usedMs: 30 * MIN, due: iso(T0 + HOUR) });
    // An hour and a half later nobody has answered: 2 hours used of 1 h.
    const later = await slaAt(second.ref, T0 + 2 * HOUR);
    expect(later.breached).toEqual(['first-response']);
    expect(later.targets!['first-response']).toMatchObject({ usedMs: 2 * HOUR, running: true });
  });
});

// The staff guide's worked example end to end, step by step as the guide
// tells it, with staff using nothing but email: a customer reports a broken
// projector; the front desk hands it to Hardware, whose technician answers
// her and hands it to the warehouse for a spare part; the warehouse puts it
// on hold with the vetted answer about spare parts and resolves it, all by
// answering ticketd's notices; the customer rates the help on the status
// page in real Chromium; and the report and `tickets show` tell the case as
// it happened. Real Dovecot, a capturing SMTP server (every mail is checked
// on what it received) and the daemon in-process; the command line only
// reads.

import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrowserEnv, type BrowserEnv } from '../harness/browser-env.js';
import { SCREENSHOTS } from '../harness/chromium.js';
import { ratingLinks } from '../harness/rating-links.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, staffReply, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

const MAIL_WAIT_MS = 60_000;

const JANE = 'jane@customer.example';
const SAM = 'sam@example.com';
const TOM = 'tom@example.com';
/** The Hardware queue's `notify` address, a list Tom reads: its notices go there instead of to Tom. */
const HARDWARE_TEAM = 'hardware-team@example.com';
const WANDA = 'wanda@example.com';

// Names no serial number, so the routing rule "machines" does not take it to Hardware.
const REQUEST = 'Projector dead. The lamp does not come on.';
const TO_HARDWARE = 'lamp or socket, please have a look';
const TOM_REPLY = 'Hello Jane, a technician will look at it tomorrow.';
const TO_WAREHOUSE = 'need socket 77-A, customer on the 3rd floor';
const ON_HOLD = 'waiting for spare part';
/** The shipped answer spare-part-delay (templates/answers/spare-part-delay.text.hbs), as it reads for Jane's ticket. */
const spareParts = (ref: string) => `the spare part for your request ${ref} is on order.`;
const RESOLUTION = 'The new socket is in and the projector works again.';
const COMMENT = 'Fast, and nobody asked me twice.';

let browser: BrowserEnv;
let env: TicketdEnv;
let context: BrowserContext;
let publicUrl: string;

beforeAll(async () => {
  browser = await startBrowserEnv((c) => {
    c.mailboxes[0].defaultQueue = 'Front desk';
    // The configuration the guide gives for the example.
    c.queues = [
      { name: 'Front desk', staff: [SAM] },
      { name: 'Hardware', staff: [TOM], notify: HARDWARE_TEAM },
      { name: 'Warehouse', staff: [WANDA] },
    ];
    c.routing = [
      {
        name: 'machines',
        match: { subject: 'projector|printer', body: 'serial' },
        set: { queue: 'Hardware', priority: 'high', tags: ['hw'] },
      },
    ];
  });
  ({ env, context, publicUrl } = browser);
}, 120_000);

afterAll(async () => {
  await browser?.stop();
}, 60_000);

/** Waits until the SMTP server holds `count` mails in all and returns the ones after the first `seen`. */
async function mailsAfter(seen: number, count: number): Promise<CapturedMessage[]> {
  const all = await env.smtp.waitFor(count, MAIL_WAIT_MS);
  return all.slice(seen);
}

/** A handoff between queues as `tickets show --json` lists it; neither side names a person. */
function handoff(from: string, to: string, by: string, note: string) {
  return { from, to, by, note, at: expect.any(String), fromQueue: from, toQueue: to, fromOwner: null, toOwner: null };
}

const bare = (id: string | undefined) => (id ?? '').replace(/^<|>$/g, '');

describe('the worked example: a broken projector, worked by email only', () => {
  let ref = '';
  let pageUrl = '';
  let ack: CapturedMessage;
  let newTicketNotice: CapturedMessage;
  let toHardware: CapturedMessage;
  let tomReply: CapturedMessage;
  let toWarehouse: CapturedMessage;
  let resolution: CapturedMessage;

  it('opens the ticket in the front desk: Jane is acknowledged and Sam is told', { timeout: 90_000 }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Projector dead', messageId: 'projector-1@customer.example', body: REQUEST }),
    );
    const first = await mailsAfter(0, 2);
    expect(first).toHaveLength(2);
    ack = first.find((m) => m.envelope.to[0] === JANE)!;
    expect(ack.envelope.to).toEqual([JANE]);
    ref = /\[(ACME-\w{6})\]/.exec(ack.parsed.subject ?? '')![1]!;
    expect(bare(ack.parsed.inReplyTo)).toBe('projector-1@customer.example');
    pageUrl = new RegExp(`${publicUrl}/t/[A-Za-z0-9_-]{43}`).exec(ack.parsed.text ?? '')![0];

    newTicketNotice = first.find((m) => m.envelope.to[0] === SAM)!;
    expect(newTicketNotice.envelope.to).toEqual([SAM]);
    expect(newTicketNotice.parsed.subject).toBe(`[${ref}] New in Front desk: Projector dead`);
    expect(newTicketNotice.parsed.text).toContain(REQUEST);
    // From the support address, so that Sam's answer comes back to ticketd.
    expect(newTicketNotice.parsed.from?.value[0]?.address).toBe(SUPPORT);
    const shown = await env.showTicket(ref);
    expect(shown.queue).toBe('Front desk');
    // The rule "machines" was tried and failed on the body; the mailbox's default queue took the ticket.
    expect(shown.priority).toBe('normal');
    expect(shown.events.find((e: any) => e.type === 'routed').detail).toMatchObject({ rule: null, queue: 'Front desk' });
  });

  it('first handoff: Sam answers the notice with #assign hardware, and the Hardware list gets the story', {
    timeout: 90_000,
  }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(newTicketNotice, {
        from: `Sam <${SAM}>`,
        messageId: 'sam-1@example.com',
        body: `#assign hardware ${TO_HARDWARE}`,
      }),
    );
    const [notice, ...more] = await mailsAfter(2, 3);
    expect(more).toEqual([]);
    toHardware = notice!;
    // To the queue's notify address, instead of to Tom himself.
    expect(toHardware.envelope.to).toEqual([HARDWARE_TEAM]);
    expect(toHardware.parsed.subject).toBe(`[${ref}] Handed to Hardware: Projector dead`);
    expect(toHardware.parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(toHardware.parsed.text).toContain(TO_HARDWARE);
    expect(toHardware.parsed.text).toContain(REQUEST);
    // Threaded per ticket: under the notice Sam answered.
    expect(toHardware.parsed.inReplyTo).toBe(newTicketNotice.parsed.messageId);
    const shown = await env.showTicket(ref);
    expect(shown.queue).toBe('Hardware');
    expect(shown.handoffs).toEqual([handoff('Front desk', 'Hardware', SAM, TO_HARDWARE)]);
  });

  it('relays Tom’s plain reply to Jane, threaded under her request, without the notice he quoted', {
    timeout: 90_000,
  }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(toHardware, { from: `Tom <${TOM}>`, messageId: 'tom-0@example.com', body: TOM_REPLY }),
    );
    const [reply, ...more] = await mailsAfter(3, 4);
    expect(more).toEqual([]);
    tomReply = reply!;
    expect(reply!.envelope.to).toEqual([JANE]);
    expect(reply!.parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(reply!.parsed.subject).toContain(`[${ref}]`);
    expect(reply!.parsed.text).toContain(TOM_REPLY);
    // The status link, as on every agent reply.
    expect(reply!.parsed.text).toContain(pageUrl);
    // What Tom quoted (the handoff notice, Sam's note) stays with staff.
    for (const internal of [TO_HARDWARE, 'wrote:', 'Handed to']) expect(reply!.parsed.text).not.toContain(internal);
    // Threads in Jane's client: it answers our acknowledgement, which answered her request.
    expect(reply!.parsed.inReplyTo).toBe(ack.parsed.messageId);
    expect(reply!.parsed.references).toEqual(['<projector-1@customer.example>', ack.parsed.messageId]);
    const shown = await env.showTicket(ref);
    expect(shown.events.filter((e: any) => e.type === 'reply').map((e: any) => e.detail)).toEqual([{ by: TOM }]);
  });

  it('second handoff: Tom answers with #assign warehouse, and Wanda gets both notes, the request and Tom’s reply', {
    timeout: 90_000,
  }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(toHardware, { from: `Tom <${TOM}>`, messageId: 'tom-1@example.com', body: `#assign warehouse ${TO_WAREHOUSE}` }),
    );
    const [notice, ...more] = await mailsAfter(4, 5);
    expect(more).toEqual([]);
    toWarehouse = notice!;
    expect(toWarehouse.envelope.to).toEqual([WANDA]);
    expect(toWarehouse.parsed.subject).toBe(`[${ref}] Handed to Warehouse: Projector dead`);
    expect(toWarehouse.parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(toWarehouse.parsed.text).toContain(TO_WAREHOUSE);
    expect(toWarehouse.parsed.text).toContain(TO_HARDWARE);
    expect(toWarehouse.parsed.text).toContain(REQUEST);
    // Tom's public reply is part of the story, so Wanda need not ask Jane what she was told.
    expect(toWarehouse.parsed.text).toContain(TOM_REPLY);
    expect(toWarehouse.parsed.inReplyTo).toBe(toHardware.parsed.messageId);
    const shown = await env.showTicket(ref);
    expect(shown.queue).toBe('Warehouse');
    expect(shown.handoffs).toHaveLength(2);
  });

  it('puts the ticket on hold by #status, and #answer spare-part-delay tells Jane why in the vetted words', {
    timeout: 90_000,
  }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(toWarehouse, {
        from: `Wanda <${WANDA}>`,
        messageId: 'wanda-1@example.com',
        body: `#status on-hold ${ON_HOLD}\r\n#answer spare-part-delay`,
      }),
    );
    const [answer, ...more] = await mailsAfter(5, 6);
    expect(more).toEqual([]);
    expect(answer!.envelope.to).toEqual([JANE]);
    expect(answer!.parsed.text).toContain(spareParts(ref));
    for (const internal of ['#status', '#answer', TO_WAREHOUSE, 'wrote:']) expect(answer!.parsed.text).not.toContain(internal);
    // In Jane's conversation, under the last mail we sent her.
    expect(answer!.parsed.inReplyTo).toBe(tomReply.parsed.messageId);
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('on-hold');
    expect(shown.events).toContainEqual(
      expect.objectContaining({ type: 'status', public: true, detail: { status: 'on-hold', reason: ON_HOLD } }),
    );
    expect(shown.events).toContainEqual(
      expect.objectContaining({
        type: 'answer_used',
        public: false,
        detail: { name: 'spare-part-delay', lang: null, by: WANDA, via: 'mail' },
      }),
    );
  });

  it('resolves by #resolve: Jane gets the reply text and a link to rate it', { timeout: 90_000 }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(toWarehouse, { from: `Wanda <${WANDA}>`, messageId: 'wanda-2@example.com', body: `#resolve\r\n${RESOLUTION}` }),
    );
    const [mail, ...more] = await mailsAfter(6, 7);
    expect(more).toEqual([]);
    resolution = mail!;
    expect(resolution.envelope.to).toEqual([JANE]);
    expect(resolution.parsed.subject).toContain(`[${ref}]`);
    expect(resolution.parsed.text).toContain(RESOLUTION);
    expect(resolution.parsed.text).toContain('How did we do? Choose a score from 1 (poor) to 5 (excellent)');
    expect(ratingLinks(resolution).textScores).toEqual([1, 2, 3, 4, 5]);
    expect(ratingLinks(resolution).htmlScores).toEqual([1, 2, 3, 4, 5]);
    expect(ratingLinks(resolution).pages).toEqual([pageUrl]);
    // Nothing meant for staff reaches Jane: not the notes, not the command, not the quoted notice.
    const raw = resolution.raw.toString('utf8');
    for (const internal of [TO_HARDWARE, TO_WAREHOUSE, '#resolve', 'wrote:']) expect(raw).not.toContain(internal);
    // Threads under her own request.
    expect(String(resolution.parsed.references)).toContain('<projector-1@customer.example>');
    expect((await env.showTicket(ref)).status).toBe('resolved');
  });

  it('takes Jane’s rating from the status page, in Chromium at phone width', { timeout: 90_000 }, async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const response = await page.goto(`${pageUrl}#rate`, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    // The customer sees the teams by name only, never the notes.
    const timeline = await page.locator('.timeline').innerText();
    expect(timeline).toContain(RESOLUTION);
    for (const internal of [TO_HARDWARE, TO_WAREHOUSE]) expect(timeline).not.toContain(internal);
    for (const step of ['Handed to the Hardware team', TOM_REPLY, 'Handed to the Warehouse team', `Reason: ${ON_HOLD}`])
      expect(timeline).toContain(step);

    await page.locator('input[name="score"][value="5"]').check();
    await page.locator('textarea[name="comment"]').fill(COMMENT);
    const [posted] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.locator('#rate button[type="submit"]').click(),
    ]);
    expect(posted.status()).toBe(303);
    await page.waitForLoadState('load');
    expect(await page.locator('.rated').innerText()).toContain('You rated our help 5 out of 5.');
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(SCREENSHOTS, 'worked-example-rated.png'), fullPage: true });
    await page.close();
    // Rating sends no mail.
    expect(env.smtp.messages).toHaveLength(7);
  });

  it('tells the whole case in tickets show --json', async () => {
    const shown = await env.showTicket(ref);
    expect(shown).toMatchObject({ status: 'resolved', queue: 'Warehouse' });
    expect(shown.handoffs).toEqual([
      handoff('Front desk', 'Hardware', SAM, TO_HARDWARE),
      handoff('Hardware', 'Warehouse', TOM, TO_WAREHOUSE),
    ]);
    expect(shown.rating).toEqual({ score: 5, comment: COMMENT, at: expect.any(String) });
    // The request and the three replies Jane got: Tom's, the answer about the part, the resolution.
    expect(shown.events.filter((e: any) => e.type === 'reply').map((e: any) => e.detail.by)).toEqual([TOM, WANDA, WANDA]);
    expect(shown.messages.filter((m: any) => m.public).map((m: any) => m.kind)).toEqual([
      'request',
      'ack',
      'agent-reply',
      'agent-reply',
      'agent-reply',
    ]);
  });

  it('counts the case in the report as worked out by hand', { timeout: 60_000 }, async () => {
    const shown = await env.showTicket(ref);
    const r = await env.cli(['report', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    // By hand: one ticket, opened and resolved once, now in Warehouse, handed off twice
    // (Front desk → Hardware → Warehouse), never reopened, rated once with 5.
    // No SLA policy is configured, so no ticket has an SLA clock (nothing breached, of 0) and
    // times are counted round the clock: each is the plain difference of the ticket's own timestamps.
    const createdAt = Date.parse(shown.createdAt);
    const resolvedAt = Date.parse(shown.events.find((e: any) => e.type === 'status' && e.detail.status === 'resolved').at);
    const resolutionMs = resolvedAt - createdAt;
    // Tom's plain reply was the first response.
    const replies = shown.events.filter((e: any) => e.type === 'reply');
    expect(replies[0].detail.by).toBe(TOM);
    const firstResponseMs = Date.parse(replies[0].at) - createdAt;
    const warehouse = {
      queue: 'Warehouse',
      opened: 1,
      resolved: 1,
      // One value: the median and the 90th percentile are that value.
      firstResponse: { count: 1, medianMs: firstResponseMs, p90Ms: firstResponseMs },
      resolution: { count: 1, medianMs: resolutionMs, p90Ms: resolutionMs },
      breached: { firstResponse: { count: 0, of: 0, share: null }, resolution: { count: 0, of: 0, share: null } },
      handoffs: { total: 2, mean: 2, distribution: { 2: 1 } },
      reopened: { count: 0, of: 1, share: 0 },
      ratings: { count: 1, average: 5, comments: [{ ref, score: 5, comment: COMMENT, at: shown.rating.at }] },
      // Wanda's #answer spare-part-delay, once.
      answersUsed: { 'spare-part-delay': 1 },
    };
    expect(report.since).toBeNull();
    expect(report.queues).toEqual([warehouse]);
    expect(report.total).toEqual({ ...warehouse, queue: null });
  });

  it('shows the case on the daemon’s /metrics, as gauges of the queue it ended in', async () => {
    const res = await fetch(`${publicUrl}/metrics`);
    expect(res.status).toBe(200);
    const lines = (await res.text()).split('\n');
    // The same counts as the report: one ticket now in Warehouse, opened, resolved, handed off twice, rated 5.
    for (const line of [
      'ticketd_queue_tickets_opened{queue="Warehouse"} 1',
      'ticketd_queue_tickets_resolved{queue="Warehouse"} 1',
      'ticketd_queue_handoffs{queue="Warehouse"} 2',
      'ticketd_queue_tickets_reopened{queue="Warehouse"} 0',
      'ticketd_queue_ratings{queue="Warehouse"} 1',
      'ticketd_queue_rating_score_sum{queue="Warehouse"} 5',
      'ticketd_answers_used{answer="spare-part-delay",queue="Warehouse"} 1',
    ])
      expect(lines).toContain(line);
    // Only the queue that holds a ticket has a value.
    expect(lines.filter((l) => l.startsWith('ticketd_queue_tickets_opened{'))).toEqual([
      'ticketd_queue_tickets_opened{queue="Warehouse"} 1',
    ]);
  });
});

// Staff working a ticket by mail, against real Dovecot and a capturing SMTP
// server: an answer to a handoff notice reaches the customer as the agent
// reply, threaded into their conversation and without the quoted notice;
// commands at the top act on the ticket; the same commands from anyone who
// is not staff do nothing, and an answer to a staff notice from anyone who
// is not staff is quarantined rather than made a ticket of.

import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, staffReply, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;
let td: InProcess;
/** What the in-process daemon logged, one entry per line. */
const logs: Record<string, any>[] = [];

beforeAll(async () => {
  env = await startTicketdEnv();
  env.writeConfig((c) => {
    c.mailboxes[0].defaultQueue = 'Front desk';
    c.queues = [
      { name: 'Front desk', staff: ['sam@example.com'] },
      { name: 'Hardware', staff: ['tom@example.com'] },
      { name: 'Warehouse', staff: ['wanda@example.com'] },
    ];
  });
  td = await env.open({ logger: createLogger({ dest: { write: (line: string) => logs.push(JSON.parse(line)) } }) });
}, 60_000);
afterAll(async () => {
  await td?.close();
  await env?.stop();
});

/** The quarantine entries of answers to staff notices not from staff, oldest first. */
async function quarantined(): Promise<any[]> {
  const r = await env.cli(['quarantine', 'list', '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout)
    .filter((q: any) => q.reason === 'staff-notice-answer-not-from-staff')
    .sort((a: any, b: any) => a.id - b.id);
}

/** Takes what the mailbox holds and sends what is due, as the daemon would now. */
async function cycle(): Promise<void> {
  td.clock.set(new Date());
  await td.cycle();
}

describe('staff by email', () => {
  let ref = '';
  let request = '';
  let notice: CapturedMessage;
  let newTicketNotice: CapturedMessage;

  it('sends the receiving queue a notice its staff can answer', async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Projector dead', messageId: 'sm-1@customer.example', body: 'The lamp does not come on.' }),
    );
    await cycle();
    const first = await env.smtp.waitFor(2);
    const ack = first.find((m) => m.envelope.to[0] === 'jane@customer.example');
    ref = /\[(ACME-\w{6})\]/.exec(ack!.parsed.subject!)![1]!;
    // The queue the ticket was routed to hears of it, in a mail its staff can answer.
    const news = first.find((m) => m.envelope.to[0] === 'sam@example.com')!;
    expect(news.parsed.subject).toBe(`[${ref}] New in Front desk: Projector dead`);
    expect(news.parsed.text).toContain('The lamp does not come on.');
    newTicketNotice = news;
    request = 'sm-1@customer.example';
    const h = await env.cli(['tickets', 'handoff', ref, '--queue', 'Hardware', '--note', 'INTERNAL-NOTE lamp, serial 4711']);
    expect(h.code, h.stderr).toBe(0);
    env.smtp.clear();
    await cycle();
    [notice] = (await env.smtp.waitFor(1)) as [CapturedMessage];
    expect(notice.envelope.to).toEqual(['tom@example.com']);
  });

  it('relays a staff answer to the customer, threaded, without the quoted notice, counted as the first response', async () => {
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: 'Tom <tom@example.com>',
        messageId: 'tom-1@example.com',
        body: 'Hello Jane,\r\n\r\na new lamp ships today.\r\n\r\nTom',
      }),
    );
    await cycle();
    const [reply] = await env.smtp.waitFor(1);
    expect(reply!.envelope.to).toEqual(['jane@customer.example']);
    const raw = reply!.raw.toString('utf8');
    expect(reply!.parsed.text).toContain('a new lamp ships today.');
    expect(raw).not.toContain('INTERNAL-NOTE');
    expect(raw).not.toContain('Handed to');
    expect(raw).not.toContain('wrote:');
    expect(reply!.parsed.subject).toContain(`[${ref}]`);
    // Threads in the customer's client: under our acknowledgement, which answered their request.
    expect(String(reply!.parsed.references)).toContain(`<${request}>`);
    expect(reply!.parsed.inReplyTo).toMatch(/@ticketd\.example\.com>$/);
    const shown = await env.showTicket(ref);
    expect(shown.messages.map((m: any) => m.kind)).toEqual([
      'request',
      'ack',
      'new-ticket-notice',
      'handoff-notice',
      'staff-mail',
      'agent-reply',
    ]);
    expect(shown.messages.find((m: any) => m.kind === 'staff-mail').public).toBe(false);
    expect(shown.events).toContainEqual(
      expect.objectContaining({ type: 'reply', public: true, detail: { by: 'tom@example.com' } }),
    );
    const db = new BetterSqlite3(join(env.dir, 'data', 'ticketd.sqlite'), { readonly: true });
    try {
      expect(
        (db.prepare('SELECT first_response_at AS at FROM tickets WHERE ref = ?').get(ref) as { at: number | null }).at,
      ).toBeGreaterThan(0);
    } finally {
      db.close();
    }
  });

  it('acts on #status and #note from staff, and sends the customer nothing for them', async () => {
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: 'tom@example.com',
        messageId: 'tom-2@example.com',
        body: '#status on-hold waiting for spare part',
      }),
    );
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: 'tom@example.com',
        messageId: 'tom-3@example.com',
        body: '#note Lamp 77-A ordered from the vendor.',
      }),
    );
    await cycle();
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('on-hold');
    expect(shown.events).toContainEqual(
      expect.objectContaining({ type: 'status', public: true, detail: { status: 'on-hold', reason: 'waiting for spare part' } }),
    );
    expect(shown.events).toContainEqual(
      expect.objectContaining({
        type: 'note',
        public: false,
        detail: { text: 'Lamp 77-A ordered from the vendor.', by: 'tom@example.com' },
      }),
    );
    expect(env.smtp.messages).toHaveLength(0);
  });

  it('never obeys the same commands from an address that is not staff', async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: 'Eve <eve@evil.example>',
        messageId: 'eve-1@evil.example',
        body: '#resolve\r\n#assign warehouse give it to me',
      }),
    );
    await cycle();
    const shown = await env.showTicket(ref);
    expect(shown).toMatchObject({ status: 'on-hold', queue: 'Hardware' });
    expect(shown.events.filter((e: any) => e.type === 'status').map((e: any) => e.detail.status)).toEqual(['on-hold']);
  });

  it('hands on with #assign (the note reaches the next queue) and resolves with #resolve', async () => {
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: 'tom@example.com',
        messageId: 'tom-4@example.com',
        body: '#assign warehouse please send lamp 77-A to the customer',
      }),
    );
    await cycle();
    const [toWarehouse] = await env.smtp.waitFor(1);
    expect(toWarehouse!.envelope.to).toEqual(['wanda@example.com']);
    expect(toWarehouse!.parsed.text).toContain('please send lamp 77-A to the customer');
    expect(toWarehouse!.parsed.text).toContain('The lamp does not come on.');
    expect(toWarehouse!.parsed.inReplyTo).toBe(notice.parsed.messageId);
    expect((await env.showTicket(ref)).handoffs.at(-1)).toMatchObject({
      from: 'Hardware',
      to: 'Warehouse',
      by: 'tom@example.com',
    });

    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(toWarehouse!, { from: 'wanda@example.com', messageId: 'wanda-1@example.com', body: '#resolve' }),
    );
    await cycle();
    expect((await env.showTicket(ref)).status).toBe('resolved');
  });

  it('quarantines an answer to a staff notice from anyone who is not staff: no ticket, no acknowledgement, no notice', async () => {
    env.smtp.clear();
    const tickets = (await env.listTickets()).length;
    const messages = (await env.showTicket(ref)).messages.length;
    // Eve's commands above were an answer to a notice too.
    const heldBefore = (await quarantined()).map((q: any) => q.id);
    expect(heldBefore).toHaveLength(1);
    // One answers the new-ticket notice, the other the handoff notice that quotes the internal note.
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(newTicketNotice, { from: 'Mallory <mallory@evil.example>', messageId: 'mal-1@evil.example', body: 'Thanks!' }),
    );
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, { from: 'Mallory <mallory@evil.example>', messageId: 'mal-2@evil.example', body: '#note mine now' }),
    );
    await cycle();
    // The outbox had its turn in the cycle; a second one finds nothing either.
    await cycle();
    expect(env.smtp.messages).toEqual([]);
    expect(await env.listTickets()).toHaveLength(tickets);
    expect((await env.showTicket(ref)).messages).toHaveLength(messages);
    const held = (await quarantined()).filter((q: any) => !heldBefore.includes(q.id));
    expect(held).toHaveLength(2);
    const logged = logs.filter((l) => l.code === 'STAFF_NOTICE_ANSWER_QUARANTINED' && l.from === 'mallory@evil.example');
    expect(logged.map((l) => ({ level: l.level, from: l.from, ref: l.ref }))).toEqual([
      { level: 'warn', from: 'mallory@evil.example', ref },
      { level: 'warn', from: 'mallory@evil.example', ref },
    ]);
    expect(logged.map((l) => l.quarantineId).sort()).toEqual(held.map((q: any) => q.id).sort());

    // The operator's way out when the sender is staff after all: add the address, then retry.
    env.writeConfig((c) => {
      c.mailboxes[0].defaultQueue = 'Front desk';
      c.queues = [
        { name: 'Front desk', staff: ['sam@example.com'] },
        { name: 'Hardware', staff: ['tom@example.com', 'mallory@evil.example'] },
        { name: 'Warehouse', staff: ['wanda@example.com'] },
      ];
    });
    // The later one, Mallory's #note on the handoff notice.
    const retried = await env.cli(['quarantine', 'retry', String(Math.max(...held.map((q: any) => q.id)))]);
    expect(retried.code, retried.stderr + retried.stdout).toBe(0);
    expect((await env.showTicket(ref)).events).toContainEqual(
      expect.objectContaining({ type: 'note', public: false, detail: { text: 'mine now', by: 'mallory@evil.example' } }),
    );
  });
});

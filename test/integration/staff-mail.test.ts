// Staff working a ticket by mail, against real Dovecot and a capturing SMTP
// server: an answer to a handoff notice reaches the customer as the agent
// reply, threaded into their conversation and without the quoted notice;
// commands at the top act on the ticket; the same commands from anyone who
// is not staff do nothing, and an answer to a staff notice from anyone who
// is not staff is quarantined rather than made a ticket of.

import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ratingLinks } from '../harness/rating-links.js';
import { createLogger } from '../../src/core/logger.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, staffReply, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;
let td: InProcess;
/** The receiving MTA whose Authentication-Results ticketd trusts. */
const TRUSTED_MTA = 'mx.example.com';
/** What the in-process daemon logged, one entry per line. */
const logs: Record<string, any>[] = [];

beforeAll(async () => {
  env = await startTicketdEnv();
  env.writeConfig((c) => {
    c.mailboxes[0].defaultQueue = 'Front desk';
    c.authentication = { trustedAuthservIds: [TRUSTED_MTA] };
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

/** A new ticket from Jane, in the Front desk; returns its reference and Sam's notice. */
async function openTicket(messageId: string): Promise<{ ref: string; notice: CapturedMessage }> {
  env.smtp.clear();
  await env.dovecot.appendMessage(SUPPORT, 'INBOX', customerMail({ subject: 'Lamp', messageId, body: 'It is dark.' }));
  await cycle();
  const notice = (await env.smtp.waitFor(2)).find((m) => m.envelope.to[0] === 'sam@example.com')!;
  return { ref: /\[(ACME-\w{6})\]/.exec(notice.parsed.subject!)![1]!, notice };
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
  let ack: CapturedMessage;

  it('sends the receiving queue a notice its staff can answer', async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Projector dead', messageId: 'sm-1@customer.example', body: 'The lamp does not come on.' }),
    );
    await cycle();
    const first = await env.smtp.waitFor(2);
    ack = first.find((m) => m.envelope.to[0] === 'jane@customer.example')!;
    ref = /\[(ACME-\w{6})\]/.exec(ack.parsed.subject!)![1]!;
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
    // On the decoded text, so that an encoded body could not hide what it must not say.
    const text = reply!.parsed.text ?? '';
    expect(text).toContain('a new lamp ships today.');
    for (const internal of ['INTERNAL-NOTE', 'Handed to', 'wrote:', '> ']) expect(text).not.toContain(internal);
    expect(reply!.parsed.subject).toContain(`[${ref}]`);
    // Threads in the customer's client: it answers our acknowledgement, which answered their
    // request; the headers as the SMTP server received them.
    const head = reply!.raw
      .toString('utf8')
      .split('\r\n\r\n')[0]!
      .replace(/\r\n[ \t]+/g, ' ');
    const header = (name: string) => new RegExp(`^${name}: (.*)$`, 'mi').exec(head)?.[1];
    expect(header('In-Reply-To')).toBe(ack.parsed.messageId);
    expect(header('References')).toBe(`<${request}> ${ack.parsed.messageId}`);
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

  it('sends the customer one resolution mail with a link per score for #resolve alone, threaded; a second #resolve sends nothing', async () => {
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Beamer flickers', messageId: 'sm-rate-1@customer.example', body: 'It flickers.' }),
    );
    await cycle();
    const opened = await env.smtp.waitFor(2);
    const ack = opened.find((m) => m.envelope.to[0] === 'jane@customer.example')!;
    const news = opened.find((m) => m.envelope.to[0] === 'sam@example.com')!;
    const beamer = /\[(ACME-\w{6})\]/.exec(ack.parsed.subject!)![1]!;

    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(news, { from: 'sam@example.com', messageId: 'sam-rate-1@example.com', body: '#resolve' }),
    );
    await cycle();
    const [resolution] = await env.smtp.waitFor(1);
    expect((await env.showTicket(beamer)).status).toBe('resolved');
    expect(resolution!.envelope.to).toEqual(['jane@customer.example']);
    expect(resolution!.parsed.subject).toContain(`[${beamer}]`);
    // Threads in the customer's client: under our acknowledgement of their request.
    expect(resolution!.parsed.inReplyTo).toBe(ack.parsed.messageId);
    expect(String(resolution!.parsed.references)).toContain('<sm-rate-1@customer.example>');
    expect(resolution!.parsed.headers.get('auto-submitted')).toBe('auto-generated');
    const links = ratingLinks(resolution!);
    expect(links.textScores).toEqual([1, 2, 3, 4, 5]);
    expect(links.htmlScores).toEqual([1, 2, 3, 4, 5]);
    expect(links.pages).toHaveLength(1);
    expect(resolution!.parsed.text).toContain('How did we do?');
    expect(resolution!.raw.toString('utf8')).not.toContain('#resolve');
    expect((await env.showTicket(beamer)).messages.filter((m: any) => m.kind === 'resolved')).toHaveLength(1);

    // Resolved already: the command is refused, and the customer hears nothing more.
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(news, { from: 'sam@example.com', messageId: 'sam-rate-2@example.com', body: '#resolve' }),
    );
    await cycle();
    expect(env.smtp.messages).toHaveLength(1);
    expect((await env.showTicket(beamer)).events.filter((e: any) => e.type === 'staff-mail-refused')).toHaveLength(1);

    // With a last word below it, the refused #resolve keeps that text from the customer too.
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(news, { from: 'sam@example.com', messageId: 'sam-rate-3@example.com', body: '#resolve\n\nAll fixed, bye!' }),
    );
    await cycle();
    expect(env.smtp.messages).toHaveLength(1);
    expect((await env.showTicket(beamer)).events.filter((e: any) => e.type === 'staff-mail-refused')).toHaveLength(2);
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

  it('hands a ticket to a person with #assign ADDRESS: the owner is set, the handoff recorded and that person mailed', async () => {
    const other = await openTicket('sm-2@customer.example');
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(other.notice, {
        from: 'sam@example.com',
        messageId: 'sam-p1@example.com',
        body: '#assign tom@example.com please look at the lamp',
      }),
    );
    await cycle();
    const [toTom, ...more] = await env.smtp.waitFor(1);
    expect(more).toEqual([]);
    expect(toTom!.envelope.to).toEqual(['tom@example.com']);
    expect(toTom!.parsed.text).toContain('please look at the lamp');
    expect(toTom!.parsed.text).toContain('It is dark.');
    expect(toTom!.parsed.inReplyTo).toBe(other.notice.parsed.messageId);
    const shown = await env.showTicket(other.ref);
    expect(shown).toMatchObject({ owner: 'tom@example.com', queue: 'Front desk' });
    expect(shown.handoffs).toEqual([
      {
        from: 'Front desk',
        to: 'tom@example.com',
        by: 'sam@example.com',
        note: 'please look at the lamp',
        at: expect.any(String),
        fromQueue: 'Front desk',
        toQueue: 'Front desk',
        fromOwner: null,
        toOwner: 'tom@example.com',
      },
    ]);
    // A move between people is internal: the customer's page shows no handoff.
    expect(shown.events.filter((e: any) => e.public).map((e: any) => e.type)).not.toContain('handoff');
    expect(shown.events.filter((e: any) => e.public && e.detail?.team !== undefined)).toEqual([]);
  });

  it('does not obey a staff From that a trusted MTA found forged (DMARC fail)', async () => {
    const other = await openTicket('sm-3@customer.example');
    env.smtp.clear();
    const forged = staffReply(other.notice, {
      from: 'Sam <sam@example.com>',
      messageId: 'forged-1@example.com',
      body: '#assign hardware FORGED take it',
    });
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      `Authentication-Results: ${TRUSTED_MTA}; spf=fail smtp.mailfrom=example.com; dkim=none; dmarc=fail (p=reject) header.from=example.com\r\n${forged}`,
    );
    await cycle();
    await cycle();
    const shown = await env.showTicket(other.ref);
    expect(shown).toMatchObject({ queue: 'Front desk', owner: null, status: 'open' });
    expect(shown.handoffs).toEqual([]);
    expect(shown.messages.map((m: any) => m.kind)).toEqual(['request', 'ack', 'new-ticket-notice']);
    expect(env.smtp.messages).toEqual([]);
    // An answer to a notice that is not trusted staff mail goes to the quarantine.
    expect(logs.filter((l) => l.code === 'STAFF_NOTICE_ANSWER_QUARANTINED').at(-1)).toMatchObject({
      from: 'sam@example.com',
      ref: other.ref,
    });
  });
});

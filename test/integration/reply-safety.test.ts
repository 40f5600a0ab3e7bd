// Hostile senders against real Dovecot and a real SMTP server: who an
// acknowledgement may reach, how many, and what it may carry back.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';
import { dbOf } from '../harness/sqlite-store.js';
import { loadNamedQueries } from '../../src/store/named-queries.js';

const VICTIM = 'victim@victim.example';
const FLOOD = 500;
const CAP = 5;

let env: TicketdEnv;
let td: InProcess;

async function deliver(raw: string | Buffer): Promise<void> {
  await env.dovecot.appendMessage(SUPPORT, 'INBOX', raw);
}

/** Takes everything in the mailbox, then sends until the outbox is empty. */
async function drain(): Promise<void> {
  await td.imap.runOnce();
  for (;;) {
    const pass = await td.outbox.runOnce();
    if (pass.sent + pass.retrying + pass.failed === 0) return;
  }
}

const sentTo = (address: string): CapturedMessage[] =>
  env.smtp.messages.filter((m) => m.envelope.to.map((a) => a.toLowerCase()).includes(address.toLowerCase()));

async function ticketBySubject(subject: string) {
  const t = (await td.runtime.store.listTickets()).find((x) => x.subject === subject);
  if (!t) throw new Error(`no ticket "${subject}"`);
  return (await td.runtime.store.ticketDetail(t.ref))!;
}

describe('automatic replies to hostile senders', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
    env.writeConfig((cfg) => {
      cfg.mailboxes[0].imap.batchSize = 100;
      cfg.limits = { acksPerSenderPerHour: CAP };
      cfg.authentication = { trustedAuthservIds: ['mx.example.com'] };
    });
    td = await env.open();
  }, 60_000);
  afterAll(async () => {
    await td?.close();
    await env?.stop();
  });
  afterEach(() => env.smtp.clear());

  it('lets a flood of forged mail with rotating From and Reply-To: victim reach the victim at most the configured cap', async () => {
    for (let i = 0; i < FLOOD; i++) {
      // The worst case: the envelope sender is forged too, so even the
      // RFC 3834 recipient is the victim; only the per-address limit stands.
      await env.dovecot.deliverToMaildir(
        SUPPORT,
        [
          `Return-Path: <${VICTIM}>`,
          customerMail({
            from: `Buyer ${i} <buyer${i}@spoof${i % 37}.example>`,
            subject: `Cheap watches ${i}`,
            messageId: `flood-${i}@spoof.example`,
            headers: { 'Reply-To': VICTIM },
          }),
        ].join('\r\n'),
      );
    }
    await drain();
    const reached = sentTo(VICTIM).length;
    console.log(`flood: ${FLOOD} spoofed mails, ${reached} acknowledgements reached the victim (cap ${CAP})`);
    expect(reached).toBeLessThanOrEqual(CAP);
    expect(reached).toBe(CAP);
    // Every mail is still a ticket that staff can see; only the replies stop.
    const tickets = (await td.runtime.store.listTickets()).filter((t) => t.subject.startsWith('Cheap watches'));
    expect(tickets).toHaveLength(FLOOD);
    const withheld = dbOf(td.runtime)
      .prepare("SELECT count(*) AS n FROM tickets WHERE ack_withheld = 'ack-rate-limited'")
      .get() as { n: number };
    expect(withheld.n).toBe(FLOOD - CAP);
  }, 300_000);

  it('applies the suppression list to the address the reply would reach, also through Reply-To', async () => {
    const bounced = 'gone@victim.example';
    dbOf(td.runtime).prepare(loadNamedQueries('sqlite').get('insert-suppression')!).run(bounced, 'bounced', Date.now());
    // Envelope and Reply-To name the suppressed address, From someone else.
    await deliver(
      [
        `Return-Path: <${bounced}>`,
        customerMail({
          from: 'mallory@evil.example',
          subject: 'Suppressed via envelope',
          messageId: 'sup-1@evil.example',
          headers: { 'Reply-To': bounced },
        }),
      ].join('\r\n'),
    );
    // Only Reply-To names it: the reply goes to From, never to Reply-To.
    await deliver(
      customerMail({
        from: 'eve@evil.example',
        subject: 'Suppressed via Reply-To',
        messageId: 'sup-2@evil.example',
        headers: { 'Reply-To': bounced },
      }),
    );
    await drain();
    expect(sentTo(bounced)).toHaveLength(0);
    expect(await ticketBySubject('Suppressed via envelope')).toMatchObject({ ackTo: bounced, ackWithheld: 'sender-suppressed' });
    expect(await ticketBySubject('Suppressed via Reply-To')).toMatchObject({ ackTo: 'eve@evil.example', ackWithheld: null });
    expect(sentTo('eve@evil.example')).toHaveLength(1);
  });

  it('never answers a bare local part, our own address or a noreply mailbox, and says why', async () => {
    // From is always a person here: it is the envelope sender and Reply-To that name the unanswerable address.
    const cases: [string, string, string][] = [
      ['root', 'Cron <cron@host.example>', 'recipient-no-domain'],
      [SUPPORT, 'Jane <jane.loop@customer.example>', 'recipient-own-address'],
      ['support+x@example.com', 'Jane <jane.loop2@customer.example>', 'recipient-own-address'],
      ['noreply@shop.example', 'Shop <sales@shop.example>', 'recipient-robot'],
      ['No-Reply@shop.example', 'Shop <sales@shop.example>', 'recipient-robot'],
      ['do_not_reply@bank.example', 'Bank <service@bank.example>', 'recipient-robot'],
      ['DoNotReply@bank.example', 'Bank <service@bank.example>', 'recipient-robot'],
      // A postmaster envelope sender is machine mail to the classifier, which decides first.
      ['post.master@isp.example', 'ISP <help@isp.example>', 'mailer-daemon'],
    ];
    for (const [i, [returnPath, from]] of cases.entries()) {
      await deliver(
        [
          `Return-Path: <${returnPath}>`,
          customerMail({
            from,
            subject: `Unanswerable ${i}`,
            messageId: `un-${i}@x.example`,
            headers: { 'Reply-To': returnPath },
          }),
        ].join('\r\n'),
      );
    }
    await drain();
    expect(env.smtp.messages.map((m) => m.envelope.to)).toEqual([]);
    for (const [i, [, , reason]] of cases.entries()) {
      const t = await ticketBySubject(`Unanswerable ${i}`);
      expect(t.ackWithheld, `case ${i}`).toBe(reason);
      // Staff see the same in `tickets show --json`.
      if (i === 0) expect(await env.showTicket(t.ref)).toMatchObject({ ackWithheld: 'recipient-no-domain' });
    }
  });

  it('answers a 924 KB subject and an 8-bit Message-ID with a bounded, 7-bit acknowledgement', async () => {
    const subject = `Order ${'Z'.repeat(924 * 1024)}`;
    const raw = Buffer.concat([
      Buffer.from(
        customerMail({ subject, messageId: 'placeholder@x' }).replace('<placeholder@x>', '<ünï-çødé@customer.example>'),
        'utf8',
      ),
    ]);
    await deliver(raw);
    await drain();
    const [ack] = env.smtp.messages;
    expect(ack).toBeDefined();
    const head = ack!.raw.toString('latin1').split('\r\n\r\n')[0]!;
    const lines = head.split('\r\n');
    console.log(
      `long subject: ${subject.length} characters in, acknowledgement of ${ack!.raw.length} bytes out, longest header line ${Math.max(...lines.map((l) => l.length))}`,
    );
    expect(ack!.raw.length).toBeLessThan(16 * 1024);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(998);
    expect(head).toMatch(/^[\x20-\x7e\r\n\t]*$/);
    expect(head).not.toMatch(/^In-Reply-To:/im);
    expect(ack!.parsed.subject!.endsWith('…')).toBe(true);
  });

  it('flags a DMARC fail stamped by a trusted MTA and sends no acknowledgement; an untrusted stamp changes nothing', async () => {
    const trusted =
      'Authentication-Results: mx.example.com; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail (p=reject) header.from=bank.example';
    const forged = 'Authentication-Results: mx.spoof.example; dmarc=fail (p=reject) header.from=bank.example';
    await deliver(
      [
        trusted,
        'Return-Path: <ceo@bank.example>',
        customerMail({ from: 'CEO <ceo@bank.example>', subject: 'Urgent wire transfer', messageId: 'dmarc-1@bank.example' }),
      ].join('\r\n'),
    );
    // A spammer can write any Authentication-Results; below an untrusted id nothing counts.
    await deliver(
      [
        forged,
        trusted.replace('ceo@', 'x@'),
        'Return-Path: <anna@shop.example>',
        customerMail({ from: 'Anna <anna@shop.example>', subject: 'Where is my parcel', messageId: 'dmarc-2@shop.example' }),
      ].join('\r\n'),
    );
    await drain();

    const flagged = await env.showTicket((await ticketBySubject('Urgent wire transfer')).ref);
    expect(flagged).toMatchObject({ flag: 'dmarc-fail', ackWithheld: 'dmarc-fail', ackTo: 'ceo@bank.example' });
    expect(sentTo('ceo@bank.example')).toHaveLength(0);

    const ordinary = await env.showTicket((await ticketBySubject('Where is my parcel')).ref);
    expect(ordinary).toMatchObject({ flag: null, ackWithheld: null, ackTo: 'anna@shop.example' });
    expect(sentTo('anna@shop.example')).toHaveLength(1);
  });
});

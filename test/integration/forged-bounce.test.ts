// A delivery report anyone can write must not silence a customer: only the
// recipients of a message ticketd sent, named by that message's Message-ID,
// are suppressed. Real Dovecot in, the capturing SMTP server out.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerMail, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;
let td: InProcess;

function report(originalId: string, failed: string[]): string {
  return [
    'Return-Path: <>',
    'From: MAILER-DAEMON@mx.attacker.example',
    `To: ${SUPPORT}`,
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: <dsn.${Date.now()}.${failed.length}@mx.attacker.example>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
    '',
    '--r',
    'Content-Type: text/plain',
    '',
    'Delivery failed.',
    '--r',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.attacker.example',
    '',
    ...failed.flatMap((address) => [`Final-Recipient: rfc822; ${address}`, 'Action: failed', 'Status: 5.1.1', '']),
    '--r',
    'Content-Type: text/rfc822-headers',
    '',
    `Message-ID: <${originalId}>`,
    '',
    '--r--',
    '',
  ].join('\r\n');
}

async function take(raw: string): Promise<void> {
  await env.dovecot.appendMessage(SUPPORT, 'INBOX', raw);
  await td.cycle();
}

describe('forged delivery reports', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
    td = await env.open();
  }, 60_000);
  afterAll(async () => {
    await td?.close();
    await env?.stop();
  });

  it('a report about the attacker’s own ticket does not stop the customer’s acknowledgements', async () => {
    await take(customerMail({ from: 'attacker@attacker.example', subject: 'hello', messageId: 'a1@attacker.example' }));
    const [attackerAck] = await env.smtp.waitFor(1);
    const attackerAckId = attackerAck!.parsed.messageId!.replace(/[<>]/g, '');
    env.smtp.clear();

    // Names both the attacker's own message and the ack the attacker received.
    await take(report('a1@attacker.example', ['jane@customer.example']));
    await take(report(attackerAckId, ['jane@customer.example']));

    await take(customerMail({ subject: 'Printer on fire', messageId: 'j1@customer.example' }));
    const [ack] = await env.smtp.waitFor(1);
    expect(ack!.envelope.to).toEqual(['jane@customer.example']);
  });

  it('a real bounce of our acknowledgement suppresses that recipient', async () => {
    env.smtp.clear();
    await take(customerMail({ from: 'gone@customer.example', subject: 'first', messageId: 'g1@customer.example' }));
    const [ack] = await env.smtp.waitFor(1);
    const ackId = ack!.parsed.messageId!.replace(/[<>]/g, '');
    env.smtp.clear();

    await take(report(ackId, ['gone@customer.example']));
    await take(customerMail({ from: 'gone@customer.example', subject: 'second', messageId: 'g2@customer.example' }));
    const tickets = JSON.parse((await env.cli(['tickets', 'list', '--json'])).stdout) as { subject: string }[];
    expect(tickets.map((t) => t.subject)).toContain('second');
    expect(env.smtp.messages).toHaveLength(0);
  });
});

// Raw 8-bit GBK and Shift_JIS subjects, written without encoded words by
// older and regional mail programs, reach the ticket and the
// acknowledgement as the customer wrote them, not as replacement characters.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;
let td: InProcess;

/** A mail whose Subject is raw bytes in a legacy charset. */
function legacyMail(from: string, id: string, subject: Buffer, contentType: string): Buffer {
  return Buffer.concat([
    Buffer.from(`From: ${from}\r\nTo: ${SUPPORT}\r\nMessage-ID: <${id}>\r\nDate: Mon, 21 Jul 2025 09:00:00 +0800\r\nSubject: `),
    subject,
    Buffer.from(`\r\nMIME-Version: 1.0\r\nContent-Type: ${contentType}\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhello\r\n`),
  ]);
}

// "打印机坏了" in GBK and "プリンター故障" in Shift_JIS, spelled out as bytes.
const GBK = Buffer.from('b4f2d3a1bbfabbb5c1cb', 'hex');
const SJIS = Buffer.from('8376838a8393835e815b8ccc8fe1', 'hex');

/** The Subject field of a raw message, unfolded. */
function rawSubject(raw: Buffer): string {
  const head = raw
    .subarray(0, raw.indexOf('\r\n\r\n'))
    .toString('latin1')
    .replace(/\r\n[ \t]/g, ' ');
  return /^subject:(.*)$/im.exec(head)?.[1]?.trim() ?? '';
}

describe('legacy-charset subjects end to end', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
    td = await env.open();
  }, 60_000);
  afterAll(async () => {
    await td?.close();
    await env?.stop();
  });

  it('stores and echoes GBK and Shift_JIS subjects decoded, in a 7-bit ack header', async () => {
    await env.dovecot.deliverToMaildir(
      SUPPORT,
      legacyMail('li@customer.example.cn', 'gbk.1@customer.example.cn', GBK, 'text/plain; charset=GBK'),
    );
    await env.dovecot.deliverToMaildir(
      SUPPORT,
      legacyMail('sato@customer.example.jp', 'sjis.1@customer.example.jp', SJIS, 'text/plain'),
    );
    await td.cycle();
    const acks = await env.smtp.waitFor(2);

    const byRecipient = new Map(acks.map((ack) => [ack.envelope.to[0], ack]));
    for (const [rcpt, expected] of [
      ['li@customer.example.cn', '打印机坏了'],
      ['sato@customer.example.jp', 'プリンター故障'],
    ] as const) {
      const ack = byRecipient.get(rcpt);
      expect(ack, rcpt).toBeDefined();
      const subject = rawSubject(ack!.raw);
      // On the wire: encoded words, no raw 8-bit, and no replacement character in them.
      expect(subject).toMatch(/^[\x20-\x7e]+$/);
      expect(ack!.parsed.subject).toContain(expected);
      expect(ack!.parsed.subject).not.toContain('\uFFFD');
    }

    const list = JSON.parse((await env.cli(['tickets', 'list', '--json'])).stdout) as { subject: string }[];
    expect(list.map((t) => t.subject).sort()).toEqual(['プリンター故障', '打印机坏了'].sort());
  });
});

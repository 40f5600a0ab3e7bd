import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import { openSqliteStore, type SqliteTestStore } from '../harness/sqlite-store.js';
import type { IntakePolicy } from '../../src/store/store.js';
import type { OutboundDraft } from '../../src/core/types.js';
import { newReference } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { intakeItem } from '../harness/intake-item.js';

let dir: string;
let store: SqliteTestStore;
let ackIds: string[];

function policy(): IntakePolicy {
  return {
    clock: fixedClock('2026-11-22T12:00:00Z'),
    ownAddresses: ['support@example.com'],
    referencePrefixes: ['ACME'],
    links: StatusLinks.fromKey(randomBytes(32)),
    statusUrl: (t) => `http://x/t/${t}`,
    rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10 }),
    newReference: () => newReference('ACME'),
    composeAck: (req): OutboundDraft => {
      const messageId = `ack.${ackIds.length}@ticketd.example.com`;
      ackIds.push(messageId);
      return {
        kind: 'ack',
        from: { address: 'support@example.com', name: '' },
        to: [{ address: req.ticket.replyTo, name: '' }],
        subject: `[${req.ticket.ref}] ${req.ticket.subject}`,
        text: req.statusUrl,
        html: null,
        messageId,
        inReplyTo: req.inbound.messageId,
        references: [],
        headers: { 'Auto-Submitted': 'auto-replied' },
      };
    },
  };
}

async function take(raw: string) {
  const item = await intakeItem(raw, {
    origin: { via: 'pipe', mailbox: 'support' },
    attachmentsDir: join(dir, 'att'),
    mustParse: true,
  });
  const [result] = await store.takeBatch([item], policy());
  return result!;
}

const request = (from: string, id: string) =>
  `From: ${from}\r\nTo: support@example.com\r\nSubject: Help\r\nMessage-ID: <${id}>\r\n\r\nbody\r\n`;

/** A multipart/report naming `originalId` as the bounced message and `recipients` as failed. */
function report(originalId: string, recipients: string[]): string {
  const perRecipient = recipients.map((r) => `Final-Recipient: rfc822; ${r}\r\nAction: failed\r\nStatus: 5.1.1\r\n`).join('\r\n');
  return [
    'Return-Path: <>',
    'From: MAILER-DAEMON@mx.example.net',
    'To: support@example.com',
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: <dsn.${randomBytes(4).toString('hex')}@mx.example.net>`,
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
    'Reporting-MTA: dns; mx.example.net',
    '',
    perRecipient,
    '--r',
    'Content-Type: text/rfc822-headers',
    '',
    `Message-ID: <${originalId}>`,
    '',
    '--r--',
    '',
  ].join('\r\n');
}

const suppressed = () =>
  (store.db.prepare('SELECT address FROM suppressions ORDER BY address').all() as { address: string }[]).map((r) => r.address);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-bounce-'));
  store = await openSqliteStore(join(dir, 'db.sqlite'));
  ackIds = [];
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bounce suppression', () => {
  it('does not let a forged report naming the attacker’s own ticket silence a customer', async () => {
    await take(request('customer@victim.example', 'c.1@victim.example'));
    await take(request('attacker@evil.example', 'a.1@evil.example'));
    // Both the attacker's own message and the acknowledgement they received are named.
    await take(report('a.1@evil.example', ['customer@victim.example']));
    await take(report(ackIds[1]!, ['customer@victim.example', 'other@victim.example']));
    expect(suppressed()).toEqual([]);
  });

  it('suppresses an address ticketd sent to when its message bounces', async () => {
    await take(request('gone@customer.example', 'g.1@customer.example'));
    const result = await take(report(ackIds[0]!, ['gone@customer.example']));
    expect(result).toMatchObject({ outcome: 'recorded', reason: 'bounce' });
    expect(suppressed()).toEqual(['gone@customer.example']);
  });

  it('suppresses only the recipients of the bounced message among those a report lists', async () => {
    await take(request('gone@customer.example', 'g.1@customer.example'));
    const result = await take(report(ackIds[0]!, ['gone@customer.example', 'bystander@victim.example']));
    expect(result.reason).toBe('bounce');
    expect(suppressed()).toEqual(['gone@customer.example']);
    const [event] = store.db.prepare("SELECT detail FROM events WHERE type = 'delivery-failure'").all() as { detail: string }[];
    expect(JSON.parse(event!.detail)).toMatchObject({
      suppressed: ['gone@customer.example'],
      refused: ['bystander@victim.example'],
    });
  });

  it('names a report that suppressed nobody but listed strangers in the intake reason', async () => {
    await take(request('attacker@evil.example', 'a.1@evil.example'));
    const result = await take(report(ackIds[0]!, ['customer@victim.example']));
    expect(result).toMatchObject({ outcome: 'recorded', reason: 'bounce-not-our-recipient' });
    expect(suppressed()).toEqual([]);
  });
});

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { classify, type ClassifyContext } from '../../src/classify/classify.js';
import type { Classification, ParsedMessage } from '../../src/core/types.js';
import { parseMessage } from '../../src/parse/parse-message.js';

// Hand-written mails in the formats providers send beyond RFC 3464 and
// RFC 3834; the real-world samples they are modelled on are in the corpus
// test (test/corpus).

const ctx: ClassifyContext = {
  ownAddresses: ['support@support.example.com'],
  ownMessageIdDomains: ['support.example.com'],
};

const dir = mkdtempSync(join(tmpdir(), 'ticketd-machine-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function parsed(name: string): Promise<ParsedMessage> {
  const raw = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'mail', name));
  const result = await parseMessage(raw, { attachmentsDir: dir, maxAttachmentBytes: 1024 * 1024 });
  if (!result.ok) throw new Error(`${name}: ${result.reason}`);
  return result.message;
}

function verdict(c: Classification): [string, boolean, string | null] {
  return [c.kind, c.mayAutoReply, c.suppressReason];
}

describe('machine mail beyond the standards', () => {
  const expected: [string, string, [string, boolean, string]][] = [
    ['OpenSMTPD bounce', 'bounce-opensmtpd.eml', ['bounce', false, 'null-sender']],
    ['Exim delay warning', 'bounce-exim-delay.eml', ['bounce', false, 'null-sender']],
    ['mail.ru bounce with a Russian subject', 'bounce-mailru.eml', ['bounce', false, 'null-sender']],
    ['carrier gateway bounce from noreply@ returning the message', 'bounce-carrier-noreply.eml', ['bounce', false, 'bounce']],
    ['post_master@ SMS gateway error', 'bounce-post-master.eml', ['bounce', false, 'mailer-daemon']],
    ['multipart/report without report-type', 'bounce-report-no-type.eml', ['bounce', false, 'mailer-daemon']],
    ['delivery status inside multipart/mixed with From: <>', 'bounce-from-null-mixed.eml', ['bounce', false, 'mailer-daemon']],
    ['Amazon SES bounce notification', 'ses-bounce-notification.eml', ['bounce', false, 'provider-notification']],
    ['RFC 5965 feedback report', 'arf-rfc5965.eml', ['auto-reply', false, 'feedback-report']],
    ['Hotmail complaint', 'arf-hotmail-complaint.eml', ['auto-reply', false, 'feedback-report']],
    ['Exchange inbox rule', 'exchange-inbox-rule.eml', ['auto-reply', false, 'inbox-rule']],
    ['fml loop alert', 'fml-loop-alert.eml', ['auto-reply', false, 'list-mail']],
  ];
  it.each(expected)('%s', async (_name, file, result) => {
    expect(verdict(classify(await parsed(file), ctx))).toEqual(result);
  });

  it('reads the failed recipient and our Message-ID from an SES notification', async () => {
    expect(classify(await parsed('ses-bounce-notification.eml'), ctx).bounce).toEqual({
      originalMessageIds: ['ack.T-2004.1752479990@support.example.com'],
      recipients: [
        { address: 'gone@example.com', action: 'failed', status: '5.1.1', diagnostic: 'smtp; 550 5.1.1 user unknown' },
      ],
    });
  });

  it('finds the bounced acknowledgement and the failed recipient in non-standard bounce texts', async () => {
    expect(classify(await parsed('bounce-opensmtpd.eml'), ctx).bounce).toEqual({
      originalMessageIds: ['ack.T-2001.1752048700@support.example.com'],
      recipients: [{ address: 'lost@example.net', action: 'failed', status: '', diagnostic: '' }],
    });
    expect(classify(await parsed('bounce-mailru.eml'), ctx).bounce?.recipients).toEqual([
      { address: 'nobody@mail.example.ru', action: 'failed', status: '', diagnostic: '' },
    ]);
    expect(classify(await parsed('bounce-carrier-noreply.eml'), ctx).bounce?.recipients).toMatchObject([
      { address: 'mobile-user@carrier.example.jp', action: 'failed' },
    ]);
  });

  it('reads a delay notice as delayed, which suppresses nobody', async () => {
    expect(classify(await parsed('bounce-exim-delay.eml'), ctx).bounce?.recipients).toEqual([
      { address: 'slow@example.org', action: 'delayed', status: '', diagnostic: '' },
    ]);
  });

  describe('system senders', () => {
    const mail = (headers: string) =>
      `${headers}\r\nTo: support@support.example.com\r\nSubject: Hello\r\nMessage-ID: <s.${headers.length}@example.net>\r\n\r\nhello\r\n`;
    async function parse(raw: string): Promise<ParsedMessage> {
      const result = await parseMessage(Buffer.from(raw), { attachmentsDir: dir, maxAttachmentBytes: 1024 });
      if (!result.ok) throw new Error(result.reason);
      return result.message;
    }
    const cases: [string, string][] = [
      ['post_master@ in From', 'From: post_master@gateway.example.net'],
      ['Mail.Delivery.System@ in From', 'From: Mail Delivery System <Mail.Delivery.System@mx.example.net>'],
      [
        'MAILER-DAEMON in Return-Path only',
        'Return-Path: <MAILER-DAEMON@mx.example.net>\r\nFrom: Mail Delivery <delivery@mx.example.net>',
      ],
      ['From: <>', 'From: <>'],
    ];
    it.each(cases)('%s is never answered', async (_name, headers) => {
      expect(verdict(classify(await parse(mail(headers)), ctx))).toEqual(['auto-reply', false, 'mailer-daemon']);
    });
  });
});

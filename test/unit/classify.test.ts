import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractBounce, isDeliveryFailure, parseDeliveryStatus } from '../../src/classify/bounce.js';
import { classify, type ClassifyContext } from '../../src/classify/classify.js';
import type { Classification, ParsedMessage } from '../../src/core/types.js';
import { parseMessage } from '../../src/parse/parse-message.js';

const ctx: ClassifyContext = {
  ownAddresses: ['support@support.example.com', 'noreply@support.example.com'],
  ownMessageIdDomains: ['support.example.com'],
};

type Overrides = Omit<Partial<ParsedMessage>, 'headers'> & { headers?: Record<string, string | string[]> };

/** A minimal ordinary request from a person; `overrides` adds the signal under test. */
function message(overrides: Overrides = {}): ParsedMessage {
  const { headers = {}, ...fields } = overrides;
  return {
    messageId: 'req.1@example.org',
    inReplyTo: [],
    references: [],
    subject: 'Printer prints blank pages',
    from: { address: 'jane@example.org', name: 'Jane' },
    replyTo: [],
    to: [{ address: 'support@support.example.com', name: '' }],
    cc: [],
    returnPath: 'jane@example.org',
    date: new Date('2025-07-01T07:00:00Z'),
    headers: new Map(Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value : [value]])),
    text: 'Hello, the printer on the 3rd floor prints blank pages.',
    textFromHtml: false,
    attachments: [],
    language: null,
    contentType: 'text/plain',
    report: null,
    size: 100,
    sha256: '0'.repeat(64),
    ...fields,
  };
}

function verdict(c: Classification): [string, boolean, string | null] {
  return [c.kind, c.mayAutoReply, c.suppressReason];
}

const DSN_FAILED = `Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.net
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address
    rejected: User unknown
`;

describe('classify: ordinary mail', () => {
  it('treats a message from a person as a request that may be answered', () => {
    expect(classify(message(), ctx)).toEqual({ kind: 'request', mayAutoReply: true, suppressReason: null, bounce: null });
  });

  it('does not treat noreply-style senders alone as automatic', () => {
    expect(verdict(classify(message({ from: { address: 'no-reply@shop.example.net', name: '' } }), ctx))).toEqual([
      'request',
      true,
      null,
    ]);
  });

  it('lets Auto-Submitted: no and X-Auto-Response-Suppress: None through', () => {
    expect(verdict(classify(message({ headers: { 'auto-submitted': 'No' } }), ctx))).toEqual(['request', true, null]);
    expect(verdict(classify(message({ headers: { 'x-auto-response-suppress': 'None' } }), ctx))).toEqual(['request', true, null]);
    expect(verdict(classify(message({ headers: { precedence: 'first-class' } }), ctx))).toEqual(['request', true, null]);
  });
});

describe('classify: suppression rules', () => {
  const cases: [string, Overrides, [string, boolean, string]][] = [
    ['null sender', { returnPath: '' }, ['auto-reply', false, 'null-sender']],
    ['MAILER-DAEMON', { from: { address: 'mailer-daemon@mx.example.net', name: '' } }, ['auto-reply', false, 'mailer-daemon']],
    ['postmaster', { from: { address: 'postmaster@example.net', name: '' } }, ['auto-reply', false, 'mailer-daemon']],
    ['bare MAILER-DAEMON', { from: { address: 'mailer-daemon', name: '' } }, ['auto-reply', false, 'mailer-daemon']],
    ['Auto-Submitted', { headers: { 'auto-submitted': 'auto-generated' } }, ['auto-reply', false, 'auto-submitted']],
    [
      'Auto-Submitted with parameters',
      { headers: { 'auto-submitted': 'Auto-Notified; owner-email="x@example.net"' } },
      ['auto-reply', false, 'auto-submitted'],
    ],
    ['Precedence: bulk', { headers: { precedence: 'bulk' } }, ['auto-reply', false, 'precedence-bulk']],
    ['Precedence: list', { headers: { precedence: 'List' } }, ['auto-reply', false, 'precedence-list']],
    ['Precedence: junk', { headers: { precedence: 'junk' } }, ['auto-reply', false, 'precedence-junk']],
    ['List-Id', { headers: { 'list-id': '<users.lists.example.org>' } }, ['auto-reply', false, 'list-mail']],
    [
      'List-Unsubscribe alone',
      { headers: { 'list-unsubscribe': '<mailto:unsub@news.example.net>' } },
      ['auto-reply', false, 'list-mail'],
    ],
    [
      'X-Auto-Response-Suppress',
      { headers: { 'x-auto-response-suppress': 'DR, RN, NRN, OOF, AutoReply' } },
      ['request', false, 'auto-response-suppress'],
    ],
    ['X-Autoreply', { headers: { 'x-autoreply': 'yes' } }, ['out-of-office', false, 'x-autoreply']],
    ['X-Autorespond', { headers: { 'x-autorespond': 'On vacation' } }, ['out-of-office', false, 'x-autoreply']],
    ['X-Loop', { headers: { 'x-loop': 'support@support.example.com' } }, ['auto-reply', false, 'x-loop']],
    [
      'our own address',
      { from: { address: 'noreply@support.example.com', name: '' }, messageId: 'x@elsewhere.example' },
      ['auto-reply', false, 'own-address'],
    ],
    ['our own Message-ID domain', { messageId: 'ack.T-1.99@Support.Example.COM' }, ['auto-reply', false, 'own-message-id']],
    ['no From', { from: null }, ['request', false, 'no-sender']],
  ];
  it.each(cases)('%s', (_name, overrides, expected) => {
    expect(verdict(classify(message(overrides), ctx))).toEqual(expected);
  });

  it('takes the first matching rule in the documented order', () => {
    const markers = {
      precedence: 'bulk',
      'list-id': '<l.example.org>',
      'x-auto-response-suppress': 'All',
      'x-loop': 'x',
    };
    const ours = { from: { address: 'support@support.example.com', name: '' }, messageId: 'a@support.example.com' };
    const reason = (overrides: Overrides) => classify(message(overrides), ctx).suppressReason;

    expect(reason({ ...ours, returnPath: '', headers: { 'auto-submitted': 'auto-generated', ...markers } })).toBe('null-sender');
    expect(
      reason({ from: { address: 'mailer-daemon@x.example', name: '' }, headers: { 'auto-submitted': 'auto-generated' } }),
    ).toBe('mailer-daemon');
    expect(reason({ ...ours, headers: { 'auto-submitted': 'auto-generated', ...markers } })).toBe('auto-submitted');
    expect(reason({ ...ours, headers: markers })).toBe('precedence-bulk');
    expect(reason({ ...ours, headers: { ...markers, precedence: 'normal' } })).toBe('list-mail');
    expect(reason({ ...ours, headers: { 'x-auto-response-suppress': 'All', 'x-loop': 'x' } })).toBe('auto-response-suppress');
    expect(reason({ ...ours, headers: { 'x-autoreply': 'yes', 'x-loop': 'x' } })).toBe('x-autoreply');
    expect(reason({ ...ours, headers: { 'x-loop': 'x' } })).toBe('x-loop');
    expect(reason(ours)).toBe('own-address');
    expect(reason({ ...ours, from: null })).toBe('own-message-id');
  });
});

describe('classify: out-of-office', () => {
  const subjects = [
    'Out of Office: Printer prints blank pages',
    'Out of Office AutoReply: Printer',
    'Automatic reply: [#T-1] We received your request',
    'Automatische Antwort: [#T-1] We received your request',
    'Abwesenheitsnotiz: Drucker',
    'Réponse automatique : Imprimante',
    'Autosvar: Skrivare',
    'Respuesta automática: Impresora',
  ];
  it.each(subjects)('recognises the subject %j', (subject) => {
    expect(verdict(classify(message({ subject }), ctx))).toEqual(['out-of-office', false, 'out-of-office']);
  });

  it('does not mistake a person writing about absence for an auto reply', () => {
    expect(classify(message({ subject: 'Out of office tomorrow, please cover the printer' }), ctx).kind).toBe('request');
    expect(classify(message({ subject: 'Auto: Reparaturtermin' }), ctx).kind).toBe('request');
    expect(classify(message({ text: 'I will be out of the office next week, please fix it before.' }), ctx).kind).toBe('request');
  });

  it('reads "Auto:" and vacation texts only on mail marked automatic', () => {
    const marked = { 'auto-submitted': 'auto-replied' };
    expect(verdict(classify(message({ subject: 'Auto: Reparaturtermin', headers: marked }), ctx))).toEqual([
      'out-of-office',
      false,
      'auto-submitted',
    ]);
    expect(
      verdict(classify(message({ subject: 'Re: Printer', text: "I'm on vacation until July 21.", headers: marked }), ctx)),
    ).toEqual(['out-of-office', false, 'auto-submitted']);
    expect(
      verdict(
        classify(
          message({ subject: 'Re: Printer', text: 'Ich bin im Urlaub.', headers: { 'x-auto-response-suppress': 'All' } }),
          ctx,
        ),
      ),
    ).toEqual(['out-of-office', false, 'auto-response-suppress']);
    expect(verdict(classify(message({ subject: 'Re: Printer', headers: marked }), ctx))).toEqual([
      'auto-reply',
      false,
      'auto-submitted',
    ]);
  });

  it('recognises Precedence: auto_reply', () => {
    expect(verdict(classify(message({ headers: { precedence: 'auto_reply' } }), ctx))).toEqual([
      'out-of-office',
      false,
      'out-of-office',
    ]);
  });
});

describe('classify: bounces', () => {
  it('reads a standard delivery status report', () => {
    const msg = message({
      returnPath: '',
      from: { address: 'mailer-daemon@mx.example.net', name: 'Mail Delivery System' },
      subject: 'Undelivered Mail Returned to Sender',
      contentType: 'multipart/report',
      report: {
        reportType: 'delivery-status',
        deliveryStatus: DSN_FAILED,
        originalHeaders: 'From: support@support.example.com\nMessage-ID:\n <ack.T-7.1@support.example.com>\nSubject: x',
      },
    });
    expect(classify(msg, ctx)).toEqual({
      kind: 'bounce',
      mayAutoReply: false,
      suppressReason: 'null-sender',
      bounce: {
        originalMessageIds: ['ack.T-7.1@support.example.com'],
        recipients: [
          {
            address: 'gone@example.net',
            action: 'failed',
            status: '5.1.1',
            diagnostic: 'smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown',
          },
        ],
      },
    });
  });

  it('is a bounce from its report even without a system sender, and never answered', () => {
    const msg = message({
      contentType: 'multipart/report',
      report: { reportType: 'delivery-status', deliveryStatus: DSN_FAILED, originalHeaders: null },
    });
    expect(verdict(classify(msg, ctx))).toEqual(['bounce', false, 'bounce']);
  });

  it('recognises non-standard bounces by a system sender and a bounce subject', () => {
    const subjects = [
      'Undelivered Mail Returned to Sender',
      'Delivery Status Notification (Failure)',
      'Mail delivery failed: returning message to sender',
      'Undeliverable: Printer prints blank pages',
      'failure notice',
    ];
    for (const subject of subjects) {
      expect(classify(message({ returnPath: '', subject }), ctx).kind).toBe('bounce');
      expect(classify(message({ from: { address: 'postmaster@example.net', name: '' }, subject }), ctx).kind).toBe('bounce');
      // From a person the same subject is just a subject.
      expect(classify(message({ subject }), ctx).kind).toBe('request');
    }
  });

  it("takes Exim's X-Failed-Recipients and a Message-ID quoted in the body", () => {
    const msg = message({
      from: { address: 'mailer-daemon@mail.example.net', name: 'Mail Delivery System' },
      subject: 'Mail delivery failed: returning message to sender',
      headers: { 'x-failed-recipients': 'Gone@Example.net, other@example.net' },
      text: 'This message was created automatically by mail delivery software.\n\n------ This is a copy of the message, including all the headers. ------\n\nFrom: support@support.example.com\nMessage-Id: <ack.T-9.1@support.example.com>\nSubject: x\n',
    });
    const result = classify(msg, ctx);
    expect(verdict(result)).toEqual(['bounce', false, 'mailer-daemon']);
    expect(result.bounce).toEqual({
      originalMessageIds: ['ack.T-9.1@support.example.com'],
      recipients: [
        { address: 'gone@example.net', action: 'failed', status: '', diagnostic: '' },
        { address: 'other@example.net', action: 'failed', status: '', diagnostic: '' },
      ],
    });
  });

  it('falls back to In-Reply-To and References for the original Message-ID', () => {
    const msg = message({
      returnPath: '',
      subject: 'Undeliverable: x',
      inReplyTo: ['ack.T-3.1@support.example.com'],
      references: ['orig@example.org', 'ack.T-3.1@support.example.com'],
      text: 'Message-ID: <ignored@example.org>',
    });
    expect(extractBounce(msg).originalMessageIds).toEqual(['ack.T-3.1@support.example.com', 'orig@example.org']);
  });

  it('parses per-recipient fields, preferring Original-Recipient', () => {
    const recipients = parseDeliveryStatus(
      [
        'Reporting-MTA: dns; mx.example.net',
        '',
        'Final-Recipient: rfc822; forwarded@elsewhere.example',
        'Original-Recipient: rfc822;Jane@Example.org',
        'Action: failed',
        'Status: 5.2.2 (mailbox full)',
        '',
        'Final-Recipient: rfc822; <slow@example.net>',
        'Original-Recipient: x-unknown; 12345',
        'Action: Delayed',
        'Status: 4.4.1',
        '',
        'Final-Recipient: rfc822; odd@example.net',
        'Status: 5.7.1',
      ].join('\r\n'),
    );
    expect(recipients).toEqual([
      { address: 'jane@example.org', action: 'failed', status: '5.2.2', diagnostic: '' },
      { address: 'slow@example.net', action: 'delayed', status: '4.4.1', diagnostic: '' },
      { address: 'odd@example.net', action: '', status: '5.7.1', diagnostic: '' },
    ]);
    expect(recipients.map(isDeliveryFailure)).toEqual([true, false, true]);
  });

  it('classifies other reports (read receipts) as automatic mail', () => {
    const msg = message({
      contentType: 'multipart/report',
      report: { reportType: 'disposition-notification', deliveryStatus: null, originalHeaders: null },
    });
    expect(verdict(classify(msg, ctx))).toEqual(['auto-reply', false, 'auto-reply']);
  });
});

describe('classify: fixtures end to end', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-classify-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function parsed(name: string): Promise<ParsedMessage> {
    const raw = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'mail', name));
    const result = await parseMessage(raw, { attachmentsDir: dir, maxAttachmentBytes: 1024 * 1024 });
    if (!result.ok) throw new Error(`${name}: ${result.reason}`);
    return result.message;
  }

  const expected: [string, [string, boolean, string | null]][] = [
    ['plain.eml', ['request', true, null]],
    ['html-only.eml', ['request', true, null]],
    ['multipart-alternative.eml', ['request', true, null]],
    ['windows-1252-qp.eml', ['request', true, null]],
    ['iso-8859-1-8bit.eml', ['request', true, null]],
    ['base64-utf8.eml', ['request', true, null]],
    ['encoded-word-subject.eml', ['request', true, null]],
    ['attachment.eml', ['request', true, null]],
    ['no-message-id.eml', ['request', true, null]],
    ['dsn-postfix.eml', ['bounce', false, 'null-sender']],
    ['dsn-delayed-headers.eml', ['bounce', false, 'null-sender']],
    ['ooo-exchange.eml', ['out-of-office', false, 'auto-submitted']],
    ['vacation-gmail.eml', ['out-of-office', false, 'auto-submitted']],
    ['list-post.eml', ['auto-reply', false, 'list-mail']],
  ];
  it.each(expected)('%s', async (name, result) => {
    expect(verdict(classify(await parsed(name), ctx))).toEqual(result);
  });

  it('finds the bounced acknowledgement in the Postfix DSN', async () => {
    const result = classify(await parsed('dsn-postfix.eml'), ctx);
    expect(result.bounce).toEqual({
      originalMessageIds: ['ack.T-1043.1751976190@support.example.com'],
      recipients: [
        {
          address: 'nobody@example.org',
          action: 'failed',
          status: '5.1.1',
          diagnostic: 'smtp; 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
        },
      ],
    });
  });

  it('reports a delayed DSN as a bounce that is not a failure', async () => {
    const result = classify(await parsed('dsn-delayed-headers.eml'), ctx);
    expect(result.bounce?.originalMessageIds).toEqual(['ack.T-1044.1752019501@support.example.com']);
    expect(result.bounce?.recipients).toMatchObject([{ address: 'slow@example.net', action: 'delayed', status: '4.4.1' }]);
    expect(result.bounce?.recipients.some(isDeliveryFailure)).toBe(false);
  });

  it('leaves a garbage message unanswered for lack of a sender', async () => {
    expect(verdict(classify(await parsed('garbage-truncated.eml'), ctx))).toEqual(['request', false, 'no-sender']);
  });
});

// Who gets an automatic reply, what a trusted MTA's DMARC verdict does, and
// what the reply's header may carry: the pure decisions behind them.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classify } from '../../src/classify/classify.js';
import { autoReplyTarget, isRobotLocalPart } from '../../src/classify/reply-recipient.js';
import { authservIdOf, senderAuthentication } from '../../src/classify/sender-auth.js';
import { boundedText } from '../../src/core/bounded-text.js';
import { fixedClock } from '../../src/core/clock.js';
import type { Classification, ParsedMessage } from '../../src/core/types.js';
import { parseMessage } from '../../src/parse/parse-message.js';
import { pino } from 'pino';
import { prepare, takeMessages, type Pipeline } from '../../src/pipeline/take-messages.js';
import { boundedReferences, composeMime, isEchoableMessageId } from '../../src/send/compose-mime.js';
import { openSqliteStore, type SqliteTestStore } from '../harness/sqlite-store.js';
import type { IntakePolicy } from '../../src/store/store.js';
import type { OutboundDraft } from '../../src/core/types.js';
import { decideThread, type ThreadContext } from '../../src/thread/decide-thread.js';
import { newReference } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';

const OWN = { ownAddresses: ['support@example.com', 'help@example.com'] };

function message(over: Partial<ParsedMessage> = {}): ParsedMessage {
  return {
    messageId: 'req.1@customer.example',
    inReplyTo: [],
    references: [],
    subject: 'Printer on fire',
    from: { address: 'jane@customer.example', name: 'Jane' },
    replyTo: [],
    to: [{ address: 'support@example.com', name: '' }],
    cc: [],
    returnPath: 'jane@customer.example',
    date: null,
    headers: new Map(),
    text: 'Help',
    textFromHtml: false,
    attachments: [],
    language: null,
    contentType: 'text/plain',
    report: null,
    size: 100,
    sha256: '0'.repeat(64),
    ...over,
  };
}

describe('autoReplyTarget: RFC 3834 section 4', () => {
  it('answers the Return-Path, never Reply-To, and From only when there is no Return-Path', () => {
    const spoofed = message({
      from: { address: 'rotating-17@spoof.example', name: 'X' },
      replyTo: [{ address: 'victim@victim.example', name: '' }],
      returnPath: 'bounce-17@spoof.example',
    });
    expect(autoReplyTarget(spoofed, OWN)).toEqual({
      ok: true,
      address: 'bounce-17@spoof.example',
      name: '',
      source: 'return-path',
    });
    const appended = message({ returnPath: null, replyTo: [{ address: 'victim@victim.example', name: '' }] });
    expect(autoReplyTarget(appended, OWN)).toEqual({ ok: true, address: 'jane@customer.example', name: 'Jane', source: 'from' });
    expect(autoReplyTarget(message(), OWN)).toMatchObject({ ok: true, address: 'jane@customer.example', name: 'Jane' });
  });

  it('has nobody to answer for the null sender or a message without any address', () => {
    expect(autoReplyTarget(message({ returnPath: '' }), OWN)).toEqual({ ok: false, reason: 'null-sender' });
    expect(autoReplyTarget(message({ returnPath: null, from: null }), OWN)).toEqual({ ok: false, reason: 'recipient-missing' });
  });

  it('refuses a local part without a domain, and a domain that is not a full name', () => {
    for (const address of ['root', 'root@', 'root@localhost']) {
      expect(autoReplyTarget(message({ returnPath: address }), OWN)).toMatchObject({ ok: false, reason: 'recipient-no-domain' });
    }
    expect(autoReplyTarget(message({ returnPath: 'a b@example.org' }), OWN)).toMatchObject({
      ok: false,
      reason: 'recipient-invalid',
    });
  });

  it('never answers our own addresses, aliases and their subaddresses', () => {
    for (const address of ['support@example.com', 'HELP@Example.com', 'support+loop@example.com']) {
      expect(autoReplyTarget(message({ returnPath: address }), OWN)).toMatchObject({
        ok: false,
        reason: 'recipient-own-address',
      });
    }
  });

  it('never answers robot mailboxes, whatever their separators and case', () => {
    const robots = [
      'noreply',
      'no-reply',
      'No_Reply',
      'no.reply',
      'NOREPLY',
      'noreply+bounce',
      'noreply-billing',
      'donotreply',
      'do-not-reply',
      'Do_Not_Reply',
      'do.not.reply',
      'mailer-daemon',
      'MAILER-DAEMON',
      'mailer_daemon',
      'postmaster',
      'post_master',
      'Post.Master',
      'owner-users',
      'users-request',
    ];
    for (const local of robots) {
      expect(isRobotLocalPart(local), local).toBe(true);
      expect(autoReplyTarget(message({ returnPath: `${local}@shop.example` }), OWN)).toMatchObject({
        ok: false,
        reason: 'recipient-robot',
      });
    }
    for (const person of ['jane', 'noreen', 'replyguy', 'postman', 'daemon-fan'])
      expect(isRobotLocalPart(person), person).toBe(false);
  });
});

const FAIL = 'mx.example.com; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail (p=reject) header.from=bank.example';

describe('senderAuthentication: trusted Authentication-Results only, above the trace boundary', () => {
  const withAr = (...values: string[]) => message({ headers: new Map([['authentication-results', values]]) });
  const trusted = { trustedAuthservIds: ['mx.example.com', 'mx.google.com'] };

  it('reads the DMARC result of a trusted authserv-id with mailauth', () => {
    expect(senderAuthentication(withAr(FAIL), trusted)).toEqual({
      authservId: 'mx.example.com',
      dmarc: 'fail',
      headerFrom: 'bank.example',
    });
    expect(
      senderAuthentication(
        withAr('mx.google.com; dkim=pass header.i=@x.example; dmarc=pass (p=NONE) header.from=x.example'),
        trusted,
      ),
    ).toMatchObject({
      dmarc: 'pass',
    });
    // A version number after the id (RFC 8601 section 2.2).
    expect(authservIdOf('MX.Example.COM 1; dmarc=fail header.from=x')).toBe('mx.example.com');
  });

  it('ignores an untrusted authserv-id, and anything below it, whatever id that claims', () => {
    expect(senderAuthentication(withAr('spoof.example; dmarc=fail header.from=x.example'), trusted)).toBeNull();
    // The spammer's own field sits below the boundary: a trusted-looking id there counts for nothing.
    expect(senderAuthentication(withAr('relay.example; none', FAIL), trusted)).toBeNull();
    expect(senderAuthentication(withAr(FAIL), { trustedAuthservIds: [] })).toBeNull();
  });

  it('reads Microsoft 365 results, which carry no authserv-id, only when that is trusted', () => {
    const m365 =
      'spf=fail (sender IP is 192.0.2.1) smtp.mailfrom=bank.example; contoso.com; dkim=none (message not signed) header.d=none;contoso.com; dmarc=fail action=quarantine header.from=bank.example;compauth=fail reason=000';
    expect(authservIdOf(m365)).toBe('');
    expect(senderAuthentication(withAr(m365), trusted)).toBeNull();
    expect(senderAuthentication(withAr(m365), { trustedAuthservIds: [''] })).toEqual({
      authservId: '',
      dmarc: 'fail',
      headerFrom: 'bank.example',
    });
  });
});

describe('decideThread: withheld replies and the global cap', () => {
  const request: Classification = { kind: 'request', mayAutoReply: true, suppressReason: null, bounce: null };
  const rules = { reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10, autoRepliesPerHour: 100 };
  const ctx = (over: Partial<ThreadContext> = {}): ThreadContext => ({
    byMessageId: [],
    byReference: [],
    acksLastHour: 0,
    ticketsLastHour: 0,
    senderSuppressed: false,
    now: 0,
    ...over,
  });

  it('opens the ticket but records why the pipeline withheld the reply', () => {
    expect(decideThread(message(), request, ctx({ replyWithheld: 'dmarc-fail' }), rules)).toMatchObject({
      action: 'new-ticket',
      ackSuppressedBy: 'dmarc-fail',
    });
    expect(decideThread(message(), request, ctx({ replyWithheld: 'recipient-robot' }), rules)).toMatchObject({
      ackSuppressedBy: 'recipient-robot',
    });
  });

  it('stops at the global hourly cap', () => {
    expect(decideThread(message(), request, ctx({ autoRepliesLastHour: 99 }), rules)).toMatchObject({ ackSuppressedBy: null });
    expect(decideThread(message(), request, ctx({ autoRepliesLastHour: 100 }), rules)).toMatchObject({
      ackSuppressedBy: 'auto-reply-cap',
    });
  });
});

describe('SqliteStore: limits and suppression on the address the reply goes to', () => {
  let dir: string;
  let store: SqliteTestStore;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ticketd-reply-'));
    store = await openSqliteStore(join(dir, 'db.sqlite'));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const policy = (autoRepliesPerHour = 1000): IntakePolicy => ({
    clock: fixedClock('2026-11-22T12:00:00Z'),
    ownAddresses: ['support@example.com'],
    referencePrefixes: ['ACME'],
    links: StatusLinks.fromKey(randomBytes(32)),
    statusUrl: (t) => `http://x/t/${t}`,
    rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10, autoRepliesPerHour }),
    newReference: () => newReference('ACME'),
    composeAck: (req): OutboundDraft => ({
      kind: 'ack',
      from: { address: 'support@example.com', name: '' },
      to: [req.to],
      subject: `[${req.ticket.ref}] ${req.ticket.subject}`,
      text: req.statusUrl,
      html: null,
      messageId: `${randomBytes(6).toString('hex')}@ticketd.example.com`,
      inReplyTo: req.inbound.messageId,
      references: [],
      headers: { 'Auto-Submitted': 'auto-replied' },
    }),
  });
  const pipeline = (p: IntakePolicy): Pipeline => ({
    store,
    policy: () => p,
    logger: undefined as never,
    dataDir: dir,
    limits: { maxMessageBytes: 1e6, maxAttachmentBytes: 1e6 },
    ownAddresses: ['support@example.com'],
    ownMessageIdDomains: ['ticketd.example.com'],
  });
  const mail = (i: number, head: string) =>
    `${head}From: sender${i}@rotating${i}.example\r\nTo: support@example.com\r\nSubject: Flood ${i}\r\nMessage-ID: <f${i}@x.example>\r\n\r\nbody\r\n`;

  it('counts acknowledgements per recipient however the From rotates', async () => {
    const p = policy();
    const items = [];
    for (let i = 0; i < 20; i++) {
      items.push(
        (
          await prepare(pipeline(p), {
            origin: { via: 'pipe', mailbox: 'support' },
            raw: Buffer.from(mail(i, 'Return-Path: <victim@victim.example>\r\nReply-To: victim@victim.example\r\n')),
          })
        ).item,
      );
    }
    const results = await store.takeBatch(items, p);
    expect(results.filter((r) => r.ackQueued)).toHaveLength(5);
    expect(results.at(-1)!.reason).toBe('ack-rate-limited');
    const tickets = await store.listTickets();
    expect(tickets).toHaveLength(20);
    expect(await store.ticketDetail(tickets.at(-1)!.ref)).toMatchObject({
      ackTo: 'victim@victim.example',
      ackWithheld: 'ack-rate-limited',
      flag: null,
    });
  });

  it('applies the suppression list to the Return-Path the reply would go to', async () => {
    const p = policy();
    store.s('insert-suppression').run('victim@victim.example', 'bounced', 0);
    const { item } = await prepare(pipeline(p), {
      origin: { via: 'pipe', mailbox: 'support' },
      raw: Buffer.from(mail(1, 'Return-Path: <victim@victim.example>\r\n')),
    });
    const [r] = await store.takeBatch([item], p);
    expect(r).toMatchObject({ outcome: 'taken', ackQueued: false, reason: 'sender-suppressed' });
  });

  it('stops acknowledging anyone once the global hourly cap is reached', async () => {
    const p = policy(3);
    const items = [];
    for (let i = 0; i < 6; i++)
      items.push(
        (await prepare(pipeline(p), { origin: { via: 'pipe', mailbox: 'support' }, raw: Buffer.from(mail(i, '')) })).item,
      );
    const results = await store.takeBatch(items, p);
    expect(results.map((r) => r.ackQueued)).toEqual([true, true, true, false, false, false]);
    expect(results.at(-1)!.reason).toBe('auto-reply-cap');
  });

  it('says once per batch that the cap held', async () => {
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const p = { ...pipeline(policy(1)), logger };
    await takeMessages(
      p,
      [0, 1, 2].map((i) => ({ origin: { via: 'pipe' as const, mailbox: 'support' }, raw: Buffer.from(mail(i, '')) })),
    );
    expect(logs.filter((l) => l.code === 'AUTO_REPLY_CAP_REACHED')).toEqual([
      expect.objectContaining({ mailbox: 'support', withheld: 2, level: 40 }),
    ]);
  });
});

describe('acknowledgement headers', () => {
  const draft = (over: Partial<OutboundDraft> = {}): OutboundDraft => ({
    kind: 'ack',
    from: { address: 'support@example.com', name: 'ACME Support' },
    to: [{ address: 'jane@customer.example', name: 'Jane' }],
    subject: '[ACME-7K3QH9] We received your request',
    text: 'Thanks',
    html: null,
    messageId: 'ack1@ticketd.example.com',
    inReplyTo: 'req.1@customer.example',
    references: ['req.1@customer.example'],
    headers: { 'Auto-Submitted': 'auto-replied' },
    ...over,
  });
  const headerLines = (raw: Buffer) => raw.toString('latin1').split('\r\n\r\n')[0]!.split('\r\n');

  it('folds every line within 998 octets, in 7-bit text without control characters, whatever the customer sent', async () => {
    const hostile = draft({
      subject: `[ACME-7K3QH9] ${'A'.repeat(924 * 1024)}`,
      to: [{ address: 'jane@customer.example', name: `${'N'.repeat(1200)}\u0007\u001b[2J` }],
      inReplyTo: `${'i'.repeat(1200)}@x.example`,
      references: ['ünïcode@x.example', 'ok.1@x.example', `${'r'.repeat(1200)}@x.example`],
    });
    const raw = await composeMime(hostile, new Date('2026-11-22T12:00:00Z'));
    const lines = headerLines(raw);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(998);
    expect(lines.join('\n')).toMatch(/^[\x20-\x7e\n\t]*$/);
    expect(raw.length).toBeLessThan(4096);
    expect(lines.some((l) => l.startsWith('In-Reply-To'))).toBe(false);
    expect(lines.filter((l) => l.startsWith('References'))).toEqual(['References: <ok.1@x.example>']);
  });

  it('keeps the first and the last nine References, and echoes only well-formed ids', () => {
    const ids = Array.from({ length: 30 }, (_, i) => `id${i}@x.example`);
    expect(boundedReferences(ids)).toEqual([ids[0], ...ids.slice(-9)]);
    for (const bad of ['no-at-sign', 'a@b@c', 'sp ace@x.example', 'ä@x.example', 'a\u0000@x.example', '<a@x>']) {
      expect(isEchoableMessageId(bad), bad).toBe(false);
    }
  });

  it('cuts echoed text on grapheme boundaries with an ellipsis', () => {
    expect(boundedText('short', 200)).toBe('short');
    const family = '👨‍👩‍👧‍👦';
    const cut = boundedText(family.repeat(300), 200);
    expect(cut.endsWith('…')).toBe(true);
    expect([...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(cut)]).toHaveLength(200);
    expect(cut.slice(0, -1)).toBe(family.repeat(199));
  });
});

describe('the pipeline attaches its verdicts', () => {
  it('decides the recipient and reads a trusted DMARC fail before the store sees the message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ticketd-prep-'));
    try {
      const raw = `Authentication-Results: ${FAIL}\r\nReturn-Path: <ceo@bank.example>\r\nFrom: ceo@bank.example\r\nReply-To: victim@victim.example\r\nTo: support@example.com\r\nSubject: Wire\r\nMessage-ID: <w@bank.example>\r\n\r\nPay\r\n`;
      const parsed = await parseMessage(Buffer.from(raw), { attachmentsDir: dir, maxAttachmentBytes: 1e6 });
      if (!parsed.ok) throw new Error(parsed.reason);
      expect(classify(parsed.message, { ownAddresses: ['support@example.com'], ownMessageIdDomains: [] }).mayAutoReply).toBe(
        true,
      );
      const p = {
        dataDir: dir,
        limits: { maxMessageBytes: 1e6, maxAttachmentBytes: 1e6 },
        ownAddresses: ['support@example.com'],
        ownMessageIdDomains: [],
        trustedAuthservIds: ['mx.example.com'],
      } as unknown as Pipeline;
      const { item } = await prepare(p, { origin: { via: 'pipe', mailbox: 'support' }, raw: Buffer.from(raw) });
      expect(item.stage).toMatchObject({
        ok: true,
        replyTarget: { ok: true, address: 'ceo@bank.example', source: 'return-path' },
        senderAuth: { authservId: 'mx.example.com', dmarc: 'fail', headerFrom: 'bank.example' },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The status page over HTTP (fastify inject), with the database filled by
// running real mail through the pipeline: parse, classify, thread, store.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerStatusLinkCommands } from '../../src/cli/status-link-commands.js';
import { composeAgentReply } from '../../src/compose/compose-mail.js';
import { parseConfig, type Config } from '../../src/config/load-config.js';
import { fixedClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { takeMessages } from '../../src/pipeline/take-messages.js';
import type { ImapWorkerHealth } from '../../src/sources/imap/imap-worker.js';
import type { OutboxCounts } from '../../src/store/store.js';
import { checkReadiness, type Readiness } from '../../src/web/readiness.js';
import { buildWebServer, SECURITY_HEADERS } from '../../src/web/server.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { TicketRecords } from '../../src/store/ticket-records.js';
import { StatusPageStore } from '../../src/web/status-page-store.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { dbOf, engineOf, recordsOf } from '../harness/sqlite-store.js';
import { testDatabase } from '../harness/ticketd-env.js';

const START = '2026-03-02T10:00:00.000Z';
const DAY = 86_400_000;
const PUBLIC_URL = 'https://help.example.com';
const LIMIT = 5;

let dir: string;
/** A file in `dir`, or a private PostgreSQL's database with TICKETD_TEST_DATABASE=postgres. */
let database = './data/ticketd.sqlite';
let postgres: PostgresServer | null = null;
const onPostgres = testDatabase() === 'postgres';
let runtime: Runtime;
const clock = fixedClock(START);
let app: FastifyInstance;
let seq = 0;
/** Each test looks up from its own address, so the failed-lookup limit of one never touches another. */
let ip = '';
afterEach(() => {
  vi.restoreAllMocks();
});

function config(over: (c: Record<string, any>) => void = () => undefined): Config {
  const json: Record<string, any> = {
    database,
    ...(postgres !== null && { dataDir: './data' }),
    publicUrl: PUBLIC_URL,
    http: { enabled: true },
    smtp: { from: 'ACME Support <support@example.com>', transport: 'file', fileDir: './outbox' },
    limits: { acksPerSenderPerHour: 1000, ticketsPerSenderPerHour: 1000 },
    statusPage: { linkExpiryDaysAfterClose: 30, failedLookupsPerMinute: LIMIT },
    mailboxes: [
      { name: 'support', address: 'support@example.com', referencePrefix: 'ACME' },
      { name: 'sales', address: 'sales@example.com', referencePrefix: 'SALES', language: 'de' },
      { name: 'queue', address: 'queue@example.com', referencePrefix: 'QUEUE' },
    ],
    sla: { policies: [{ name: 'std', match: { mailbox: 'support' }, firstResponse: '4h', resolution: '3d', calendar: '24x7' }] },
  };
  over(json);
  return parseConfig(json, dir);
}

interface MailSpec {
  from?: string;
  to?: string;
  subject?: string;
  /** Encoded as one RFC 2047 word, so it may hold anything (CR, LF, markup). */
  rawSubject?: string;
  body?: string;
  html?: string;
  inReplyTo?: string;
  headers?: Record<string, string>;
  attachmentName?: string;
}

function mail(m: MailSpec): { raw: string; messageId: string } {
  const messageId = `m${++seq}@customer.example`;
  const subject =
    m.rawSubject !== undefined ? `=?UTF-8?B?${Buffer.from(m.rawSubject).toString('base64')}?=` : (m.subject ?? 'Printer jams');
  const head = [
    `From: ${m.from ?? 'Jane Customer <jane@customer.example>'}`,
    `To: ${m.to ?? 'support@example.com'}`,
    `Subject: ${subject}`,
    `Date: ${new Date(clock.now()).toUTCString()}`,
    `Message-ID: <${messageId}>`,
    ...(m.inReplyTo ? [`In-Reply-To: <${m.inReplyTo}>`, `References: <${m.inReplyTo}>`] : []),
    ...Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    'MIME-Version: 1.0',
  ];
  const b64 = (s: string) => Buffer.from(s).toString('base64').replace(/.{76}/g, '$&\r\n');
  const textPart =
    m.html !== undefined
      ? ['Content-Type: text/html; charset=utf-8', 'Content-Transfer-Encoding: base64', '', b64(m.html)]
      : [
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: base64',
          '',
          b64(m.body ?? 'It jams on every page.'),
        ];
  if (!m.attachmentName) return { raw: [...head, ...textPart, ''].join('\r\n'), messageId };
  const boundary = 'b-o-u-n-d-a-r-y';
  const name = `=?UTF-8?B?${Buffer.from(m.attachmentName).toString('base64')}?=`;
  return {
    raw: [
      ...head,
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      `--${boundary}`,
      ...textPart,
      `--${boundary}`,
      `Content-Type: text/plain; name="${name}"`,
      `Content-Disposition: attachment; filename="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      b64('attached'),
      `--${boundary}--`,
      '',
    ].join('\r\n'),
    messageId,
  };
}

async function deliver(m: MailSpec, mailbox = 'support'): Promise<{ ref: string | null; messageId: string }> {
  const { raw, messageId } = mail(m);
  const [result] = await takeMessages(runtime.pipeline, [{ origin: { via: 'pipe', mailbox }, raw: Buffer.from(raw) }]);
  if (!result || result.outcome === 'quarantined') throw new Error(`mail not taken: ${JSON.stringify(result)}`);
  return { ref: result.ref, messageId };
}

interface Opened {
  ref: string;
  ticketId: number;
  token: string;
  ackId: string;
  ackText: string;
}

/** A new ticket from real mail, with the token taken from its acknowledgement. */
async function openTicket(m: MailSpec = {}, mailbox = 'support'): Promise<Opened> {
  const { ref } = await deliver(m, mailbox);
  const detail = await runtime.store.ticketDetail(ref!);
  const ack = detail!.messages.find((x) => x.kind === 'ack')!;
  const token = new RegExp(`${PUBLIC_URL}/t/([A-Za-z0-9_-]{43})`).exec(ack.text)![1]!;
  return { ref: ref!, ticketId: (await runtime.store.ticketByRef(ref!))!.id, token, ackId: ack.messageId, ackText: ack.text };
}

function get(url: string, opts: { ip?: string; headers?: Record<string, string>; server?: FastifyInstance } = {}) {
  return (opts.server ?? app).inject({ method: 'GET', url, remoteAddress: opts.ip ?? ip, headers: opts.headers ?? {} });
}

function page(token: string, from?: string) {
  return get(`/t/${token}`, from === undefined ? {} : { ip: from });
}

function withoutDate(headers: Record<string, unknown>): Record<string, unknown> {
  const { date: _date, ...rest } = headers;
  return rest;
}

let ipCounter = 0;
function freshIp(): string {
  ipCounter++;
  return `198.51.100.${ipCounter}`;
}

let readinessImpl: () => Promise<Readiness> = async () => {
  throw new Error('not set');
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-status-page-'));
  if (onPostgres) {
    postgres = await startPostgres();
    database = await postgres.createDatabase();
  }
  runtime = await Runtime.open(config(), silentLogger(), clock);
  app = buildWebServer({ site: runtime, readiness: () => readinessImpl() });
});

afterAll(async () => {
  await app?.close();
  await runtime?.close();
  await postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /t/<token>', () => {
  it('shows the ticket of a real acknowledgement: reference, subject, received, status, promise, how to reply', async () => {
    ip = freshIp();
    const t = await openTicket({ subject: 'Printer on the 3rd floor jams' });
    const res = await page(t.token);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = res.body;
    expect(html).toContain(`<dd class="ref">${t.ref}</dd>`);
    expect(html).toContain('<h1 id="subject" class="user-text">Printer on the 3rd floor jams</h1>');
    expect(html).toContain('<time datetime="2026-03-02T10:00:00.000Z">Mar 2, 2026, 10:00');
    expect(html).toContain('We are working on it</p>');
    // The SLA engine's first-response target, 4 hours round the clock.
    expect(html).toContain('We aim to reply by <time datetime="2026-03-02T14:00:00.000Z">');
    expect(html).toContain(
      `<a href="mailto:support@example.com?subject&#x3D;%5B${t.ref.replace('-', '-')}%5D">support@example.com</a>`,
    );
    expect(html).toContain(`<span class="ref">[${t.ref}]</span> in the subject`);
    expect(html).toContain('We received your request');
    expect(html).toContain('We confirmed by email that it arrived');
    expect(html).toContain('You wrote');
    expect(html).toContain('It jams on every page.');
    // The acknowledgement itself (with the link in it) is an event, not a message.
    expect(html).not.toContain('Thank you for writing to us');
    expect(html).not.toContain(t.token);
  });

  it('computes the queue with the same query as the acknowledgement', async () => {
    ip = freshIp();
    const first = await openTicket({ from: 'q1@customer.example', subject: 'q1' }, 'queue');
    await openTicket({ from: 'q2@customer.example', subject: 'q2' }, 'queue');
    const third = await openTicket({ from: 'q3@customer.example', subject: 'q3' }, 'queue');
    expect(third.ackText).toContain('There are 2 requests ahead of yours.');
    expect((await page(third.token)).body).toContain('2 open requests are ahead of yours.');
    expect((await page(first.token)).body).toContain('Yours is the next request in line.');

    await runtime.store.setStatus(first.ref, 'pending', { now: clock.now().getTime() });
    expect((await page(third.token)).body).toContain('1 open request is ahead of yours.');
    const pending = (await page(first.token)).body;
    expect(pending).toContain('Waiting for your reply</p>');
    expect(pending).not.toMatch(/ahead of yours|next request in line/);
  });

  it('shows status changes, the on-hold reason and handoffs to a team', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'hold@customer.example' });
    await recordsOf(runtime).event(t.ticketId, 'handoff', true, { team: 'Hardware & <Repairs>' }, clock.now().getTime());
    await runtime.store.setStatus(t.ref, 'on-hold', { reason: 'waiting for a spare part', now: clock.now().getTime() });
    const html = (await page(t.token)).body;
    expect(html).toContain('On hold</p>');
    expect(html).toContain('<p>Reason: <span class="user-text">waiting for a spare part</span></p>');
    expect(html).toContain('Handed to the <span class="user-text">Hardware &amp; &lt;Repairs&gt;</span> team');
    expect(html).toMatch(/Status: on hold\s*<\/span>\s*<br>Reason: <span class="user-text">waiting for a spare part<\/span>/);
  });

  it('shows our replies and the customer’s as text, with quoted history and our signature stripped', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'thread@customer.example' });
    const now = clock.now().getTime();
    await runtime.store.addAgentReply(
      t.ref,
      (ticket, statusUrl, thread) =>
        composeAgentReply(
          { config: runtime.config, mailbox: runtime.mailbox(ticket.mailbox), templates: runtime.templates },
          ticket,
          'We replaced the roller.\nPlease try again.',
          statusUrl,
          thread,
        ),
      await runtime.pipeline.policy(),
      now,
    );
    await deliver({
      from: 'thread@customer.example',
      subject: `Re: [${t.ref}] Printer jams`,
      inReplyTo: t.ackId,
      body: [
        'It works again, thanks!',
        '',
        'On Mon, 2 Mar 2026 at 10:00, ACME Support <support@example.com> wrote:',
        '> We replaced the roller. QUOTED-MARKER',
        '> Please try again.',
      ].join('\r\n'),
    });
    const html = (await page(t.token)).body;
    expect(html).toContain('We replied</span>');
    expect(html).toContain('>We replaced the roller.\nPlease try again.</div>');
    expect(html).toContain('>It works again, thanks!</div>');
    expect(html).not.toContain('QUOTED-MARKER');
    expect(html).not.toContain('wrote:');
    // The footer of our reply (reference and link) sits below the "-- " line.
    expect(html).not.toContain('Status of your request');
    // First response given: the promise moves on to the resolution target (3 days).
    expect(html).toContain('We aim to resolve your request by <time datetime="2026-03-05T10:00:00.000Z">');
  });

  it('never shows internal notes, bounces, out-of-office replies, staff warnings or link events', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'bouncy@customer.example' });
    await deliver({
      from: 'bouncy@customer.example',
      subject: `Out of office: [${t.ref}] Printer jams`,
      inReplyTo: t.ackId,
      headers: { 'Auto-Submitted': 'auto-replied' },
      body: 'I am away until Monday. OOO-MARKER',
    });
    const dsn = [
      'From: MAILER-DAEMON@mx.example.com (Mail Delivery System)',
      'To: support@example.com',
      'Subject: Undelivered Mail Returned to Sender',
      `Message-ID: <dsn-${++seq}@mx.example.com>`,
      'Auto-Submitted: auto-replied',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn"',
      '',
      '--dsn',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Your message could not be delivered. BOUNCE-MARKER',
      '--dsn',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.com',
      '',
      'Final-Recipient: rfc822; bouncy@customer.example',
      'Action: failed',
      'Status: 5.1.1',
      '--dsn',
      'Content-Type: text/rfc822-headers',
      '',
      'From: support@example.com',
      'To: bouncy@customer.example',
      `Message-ID: <${t.ackId}>`,
      '--dsn--',
      '',
    ].join('\r\n');
    const [bounce] = await takeMessages(runtime.pipeline, [
      { origin: { via: 'pipe', mailbox: 'support' }, raw: Buffer.from(dsn) },
    ]);
    expect(bounce).toMatchObject({ outcome: 'recorded', ref: t.ref });
    const now = clock.now().getTime();
    await recordsOf(runtime).event(t.ticketId, 'note', false, { text: 'NOTE-MARKER' }, now);
    await recordsOf(runtime).event(t.ticketId, 'note', true, { text: 'PUBLIC-NOTE-MARKER' }, now);
    await engineOf(runtime).transaction((tx) =>
      new TicketRecords(tx).queueOutbound(
        t.ticketId,
        'support',
        {
          kind: 'staff-warning',
          from: { address: 'support@example.com', name: '' },
          to: [{ address: 'staff@example.com', name: '' }],
          subject: 'SLA warning',
          text: 'STAFF-MARKER',
          html: null,
          messageId: `staff-${seq}@ticketd.example.com`,
          inReplyTo: null,
          references: [],
          headers: {},
        },
        now,
      ),
    );
    await runtime.statusPages.revokeLinks('NO-SUCH', now);

    const detail = await runtime.store.ticketDetail(t.ref);
    // The hidden things are really there, so the page has something to hide.
    expect(detail!.messages.map((m) => m.kind)).toEqual(expect.arrayContaining(['out-of-office', 'bounce', 'staff-warning']));
    expect(detail!.events.map((e) => e.type)).toEqual(expect.arrayContaining(['out-of-office', 'delivery-failure', 'note']));

    const html = (await page(t.token)).body;
    for (const marker of [
      'OOO-MARKER',
      'BOUNCE-MARKER',
      'NOTE-MARKER',
      'PUBLIC-NOTE-MARKER',
      'STAFF-MARKER',
      'Undelivered',
      'away until',
    ]) {
      expect(html).not.toContain(marker);
    }
    // received, the request, acknowledged
    expect(html.match(/<time class="when"/g)).toHaveLength(3);
  });

  it('escapes a hostile subject, sender name, body and file name, and never renders mail HTML', async () => {
    ip = freshIp();
    const longLine = 'x'.repeat(10_000);
    const t = await openTicket({
      from: '"<img src=x onerror=window.__pwned=1>" <eve@evil.example>',
      rawSubject: '<script>window.__pwned=2</script>\r\nSet-Cookie: pwned=1\r\n\u202Eexe.txt 🔥 {{ref}}',
      body: [
        '<script>window.__pwned=3</script>',
        '<a href="javascript:window.__pwned=4">click me</a>',
        '<img src=x onerror="window.__pwned=5">',
        '</div></li></ol><h1>FAKE</h1>',
        longLine,
        '\u202Egnp.exe',
        'Emoji: 🔥🖨️',
        '{{{ref}}} {{ref}}',
      ].join('\r\n'),
      attachmentName: '<svg onload=window.__pwned=6>.txt',
    });
    const res = await page(t.token);
    expect(res.statusCode).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    const html = res.body;
    expect(html).not.toMatch(/<script|<img|<svg|<h1>FAKE/i);
    expect(html.match(/<h1[ >]/g)).toHaveLength(1);
    expect([...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual([
      'data:,',
      `mailto:support@example.com?subject&#x3D;%5B${t.ref}%5D`,
    ]);
    expect(html).toContain(
      '<h1 id="subject" class="user-text">&lt;script&gt;window.__pwned&#x3D;2&lt;/script&gt; Set-Cookie: pwned&#x3D;1 \u202Eexe.txt 🔥 {{ref}}</h1>',
    );
    expect(html).toContain('<dd class="user-text">&lt;img src&#x3D;x onerror&#x3D;window.__pwned&#x3D;1&gt;</dd>');
    expect(html).toContain('&lt;a href&#x3D;&quot;javascript:window.__pwned&#x3D;4&quot;&gt;click me&lt;/a&gt;');
    expect(html).toContain('&lt;/div&gt;&lt;/li&gt;&lt;/ol&gt;&lt;h1&gt;FAKE&lt;/h1&gt;');
    expect(html).toContain(`\n${longLine}\n`);
    expect(html).toContain('\n\u202Egnp.exe\n');
    expect(html).toContain('Emoji: 🔥🖨️');
    expect(html).toContain('{{{ref}}} {{ref}}');
    expect(html).toContain('<li class="user-text">&lt;svg onload&#x3D;window.__pwned&#x3D;6&gt;.txt</li>');
  });

  it('shows an HTML-only mail as its text, never as HTML', async () => {
    ip = freshIp();
    const t = await openTicket({
      from: 'html@customer.example',
      html: '<p>Hello <b>BOLD-MARKER</b></p><script>window.__pwned=7</script><img src="https://tracker.example/p.gif">',
    });
    const html = (await page(t.token)).body;
    expect(html).toMatch(/Hello BOLD-MARKER/i);
    expect(html).not.toMatch(/<b>|<script|<img|tracker\.example\/p\.gif"/);
  });

  it('uses the ticket language where a page exists, else the default', async () => {
    ip = freshIp();
    const sales = await openTicket({ from: 'kunde@kunde.example', to: 'sales@example.com' }, 'sales');
    const de = (await page(sales.token)).body;
    expect(de).toContain('<html lang="de">');
    expect(de).toContain('Wir arbeiten daran</p>');
    expect(de).toMatch(/2\. März 2026, \d\d:\d\d UTC/);
    const byHeader = await openTicket({ from: 'cl@customer.example', headers: { 'Content-Language': 'de-AT' } });
    expect((await page(byHeader.token)).body).toContain('<html lang="de">');
    const french = await openTicket({ from: 'fr@customer.example', headers: { 'Content-Language': 'fr' } });
    expect((await page(french.token)).body).toContain('<html lang="en">');
  });
});

describe('failed lookups', () => {
  it('answer unknown, malformed and badly encoded links with the same 404 page and headers', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'same@customer.example' });
    const unknown = 'A'.repeat(43);
    const urls = [
      `/t/${unknown}`,
      `/t/${t.token.slice(0, 42)}`,
      `/t/${t.token}x`,
      `/t/${t.token.slice(0, 42)}!`,
      '/t/',
      '/t/%zz',
      `/t/${'a'.repeat(300)}`,
      `/t/${t.token}/extra`,
      '/t',
      '/status/whatever',
    ];
    const responses = [];
    for (const url of urls) responses.push(await get(url, { ip: freshIp() }));
    const [first] = responses;
    expect(first!.statusCode).toBe(404);
    expect(first!.body).toContain('This link does not work');
    for (const [i, r] of responses.entries()) {
      expect([urls[i], r.statusCode]).toEqual([urls[i], 404]);
      expect(r.body).toBe(first!.body);
      expect(withoutDate(r.headers)).toEqual(withoutDate(first!.headers));
    }
  });

  it('do the same work for malformed and unknown tokens: hash, query, constant-time compare', async () => {
    const linkByHash = vi.spyOn(StatusPageStore.prototype, 'linkByHash');
    const hash = vi.spyOn(StatusLinks, 'hash');
    const sameHash = vi.spyOn(StatusLinks, 'sameHash');
    for (const token of ['short', 'B'.repeat(43), '%3Cscript%3E']) {
      linkByHash.mockClear();
      hash.mockClear();
      sameHash.mockClear();
      expect((await get(`/t/${token}`, { ip: freshIp() })).statusCode).toBe(404);
      const decoded = decodeURIComponent(token);
      expect(hash.mock.calls).toEqual([[decoded]]);
      expect(linkByHash.mock.calls).toEqual([[StatusLinks.hash(decoded)]]);
      expect(sameHash).toHaveBeenCalledTimes(1);
    }
  });

  it('are rate limited per client: 429 once over, for valid links too, other clients unaffected', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'limit@customer.example' });
    const attacker = freshIp();
    for (let i = 0; i < LIMIT; i++) expect((await page(`${'C'.repeat(42)}${i}`, attacker)).statusCode).toBe(404);
    const blocked = await page(t.token, attacker);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBe('60');
    expect(blocked.body).toContain('Please wait a moment');
    expect(blocked.body).not.toContain(t.ref);
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(blocked.headers[name]).toBe(value);
    expect((await page(t.token, freshIp())).statusCode).toBe(200);
    // Without trustProxy, X-Forwarded-For is ignored: the attacker cannot claim another address.
    expect((await get(`/t/${t.token}`, { ip: attacker, headers: { 'x-forwarded-for': freshIp() } })).statusCode).toBe(429);
    clock.advance(60_001);
    expect((await page(t.token, attacker)).statusCode).toBe(200);
  });

  it('with trustProxy, count per address the proxy saw, not what the client wrote', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'proxy@customer.example' });
    const proxy = freshIp();
    runtime.reload(config((c) => (c.http.trustProxy = [proxy])));
    const proxied = buildWebServer({ site: runtime, readiness: () => readinessImpl() });
    try {
      const client = freshIp();
      for (let i = 0; i < LIMIT; i++) {
        // Each request claims a different address on the left; the proxy appends the real one.
        const res = await get(`/t/${'D'.repeat(42)}${i}`, {
          server: proxied,
          ip: proxy,
          headers: { 'x-forwarded-for': `${freshIp()}, ${client}` },
        });
        expect(res.statusCode).toBe(404);
      }
      const blocked = await get(`/t/${t.token}`, {
        server: proxied,
        ip: proxy,
        headers: { 'x-forwarded-for': `203.0.113.9, ${client}` },
      });
      expect(blocked.statusCode).toBe(429);
      const other = await get(`/t/${t.token}`, { server: proxied, ip: proxy, headers: { 'x-forwarded-for': freshIp() } });
      expect(other.statusCode).toBe(200);
    } finally {
      await proxied.close();
      runtime.reload(config());
    }
  });
});

describe('bounds', () => {
  it('pages a history of 500 replies of 20 KB: each page stays small, newest first by default, with links to the rest', async () => {
    ip = freshIp();
    const first = await deliver({ from: 'long@customer.example', subject: 'Long story' });
    const replies = 500;
    for (let i = 0; i < replies; i++) {
      // Distinct lines, so nothing is taken for quoted history.
      const body = Array.from({ length: 256 }, (_, l) => `reply ${i} line ${l} ${'y'.repeat(64)}`).join('\r\n');
      await deliver({ from: 'long@customer.example', subject: 'Re: Long story', inReplyTo: first.messageId, body });
      clock.advance(1_000);
    }
    const detail = await runtime.store.ticketDetail(first.ref!);
    expect(detail!.messages.filter((m) => m.kind === 'reply')).toHaveLength(replies);
    const ack = detail!.messages.find((x) => x.kind === 'ack')!;
    const token = new RegExp(`${PUBLIC_URL}/t/([A-Za-z0-9_-]{43})`).exec(ack.text)![1]!;

    const newest = await page(token);
    expect(newest.statusCode).toBe(200);
    // 503 entries (received, request, acknowledged, 500 replies) make 51 pages of 10.
    expect(newest.body).toContain('Page 51 of 51.');
    expect(newest.body).toContain(`reply ${replies - 1} line 0`);
    expect(newest.body).not.toContain('reply 480 line 0');
    expect(newest.body).not.toContain('We received your request');
    expect(newest.body).toContain('href="?page&#x3D;50" rel="prev"');
    expect(newest.body).not.toContain('rel="next"');
    const bound = 256 * 1024;
    expect(Buffer.byteLength(newest.body)).toBeLessThan(bound);

    const oldest = await get(`/t/${token}?page=1`);
    expect(oldest.body).toContain('Page 1 of 51.');
    expect(oldest.body).toContain('We received your request');
    expect(oldest.body).toContain('reply 0 line 0');
    expect(oldest.body).toContain('href="?page&#x3D;2" rel="next"');
    expect(oldest.body).not.toContain('rel="prev"');
    // Anything that is not a page number shows the newest page.
    for (const q of ['?page=999', '?page=abc', '?page=0', '?page=-1', '?page=1&page=2']) {
      const res = await get(`/t/${token}${q}`);
      expect(res.statusCode, q).toBe(200);
      expect(res.body, q).toContain('Page 51 of 51.');
    }

    const sizes: number[] = [];
    const rssBefore = process.memoryUsage().rss;
    for (let i = 0; i < 300; i++) {
      // Every page in turn, so the full ones (10 replies each) are measured too.
      const res = await get(`/t/${token}?page=${(i % 51) + 1}`, { ip: `10.77.${Math.floor(i / 200)}.${(i % 200) + 1}` });
      expect(res.statusCode).toBe(200);
      sizes.push(Buffer.byteLength(res.body));
    }
    const rssAfter = process.memoryUsage().rss;
    const mb = (n: number) => Math.round(n / 1024 / 1024);
    console.log(
      `status page: ${replies} replies of 20 KB; page ${Math.max(...sizes)} bytes (bound ${bound}); ` +
        `300 loads: RSS ${mb(rssBefore)} MB -> ${mb(rssAfter)} MB`,
    );
    expect(Math.max(...sizes)).toBeLessThan(bound);
    // Loose on purpose (the collector decides when to give memory back); the
    // same loads of the unbounded 10 MB page took RSS to about 2.9 GB.
    expect(rssAfter - rssBefore).toBeLessThan(600 * 1024 * 1024);
  }, 300_000);

  it('cuts a long message with a note, and a long subject and file list', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'cut@customer.example', rawSubject: `S${'s'.repeat(5_000)}`, body: 'z'.repeat(200_000) });
    const html = (await page(t.token)).body;
    expect(html).toContain('This message is long; only its beginning is shown here.');
    expect(html).not.toContain('z'.repeat(20_001));
    expect(html).toContain(`S${'s'.repeat(298)}…</h1>`);
    expect(Buffer.byteLength(html)).toBeLessThan(64 * 1024);
  });

  it('limits valid lookups per client too (statusPage.lookupsPerMinute)', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'often@customer.example' });
    runtime.reload(config((c) => (c.statusPage.lookupsPerMinute = 3)));
    try {
      const reader = freshIp();
      for (let i = 0; i < 3; i++) expect((await page(t.token, reader)).statusCode).toBe(200);
      const blocked = await page(t.token, reader);
      expect(blocked.statusCode).toBe(429);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      expect((await page(t.token, freshIp())).statusCode).toBe(200);
      clock.advance(60_001);
      expect((await page(t.token, reader)).statusCode).toBe(200);
    } finally {
      runtime.reload(config());
    }
  });
});

describe('trusted proxies', () => {
  it('believe X-Forwarded-For only from a listed proxy: any other peer is counted by its own address', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'notproxy@customer.example' });
    runtime.reload(config((c) => (c.http.trustProxy = ['127.0.0.1', '10.0.0.0/8'])));
    const proxied = buildWebServer({ site: runtime, readiness: () => readinessImpl() });
    try {
      // A direct client claims a fresh address each time; it must still be counted as itself.
      const direct = freshIp();
      for (let i = 0; i < LIMIT; i++) {
        const res = await get(`/t/${'F'.repeat(42)}${i}`, {
          server: proxied,
          ip: direct,
          headers: { 'x-forwarded-for': freshIp() },
        });
        expect(res.statusCode).toBe(404);
      }
      expect(
        (await get(`/t/${t.token}`, { server: proxied, ip: direct, headers: { 'x-forwarded-for': freshIp() } })).statusCode,
      ).toBe(429);
      // Through a proxy inside the listed network, the forwarded address counts.
      expect(
        (await get(`/t/${t.token}`, { server: proxied, ip: '10.1.2.3', headers: { 'x-forwarded-for': direct } })).statusCode,
      ).toBe(429);
      expect(
        (await get(`/t/${t.token}`, { server: proxied, ip: '10.1.2.3', headers: { 'x-forwarded-for': freshIp() } })).statusCode,
      ).toBe(200);
    } finally {
      await proxied.close();
      runtime.reload(config());
    }
  });
});

describe('revoked and expired links', () => {
  it('revoke-links kills every link of the ticket; the next mail carries a fresh one that works', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'revoke@customer.example' });
    const unknown = await page('E'.repeat(43));
    expect((await page(t.token)).statusCode).toBe(200);

    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const tickets = new Command('tickets').exitOverride();
    registerStatusLinkCommands(tickets, {
      configPath: () => '',
      openRuntime: () => Runtime.open(runtime.config, silentLogger(), clock),
    });
    await tickets.parseAsync(['revoke-links', t.ref.toLowerCase()], { from: 'user' });
    expect(stderr).toHaveBeenCalledWith(`${t.ref}: revoked 1 status link; the next mail to each recipient carries a new one\n`);
    await expect(tickets.parseAsync(['revoke-links', 'ACME-ZZZZZZ'], { from: 'user' })).rejects.toMatchObject({
      code: 'TICKETD_USAGE',
    });
    stderr.mockRestore();

    const revoked = await page(t.token);
    expect(revoked.statusCode).toBe(404);
    expect(revoked.body).toBe(unknown.body);
    expect(withoutDate(revoked.headers)).toEqual(withoutDate(unknown.headers));

    const reply = await runtime.store.addAgentReply(
      t.ref,
      (ticket, statusUrl, thread) =>
        composeAgentReply(
          { config: runtime.config, mailbox: runtime.mailbox(ticket.mailbox), templates: runtime.templates },
          ticket,
          'New link below.',
          statusUrl,
          thread,
        ),
      await runtime.pipeline.policy(),
      clock.now().getTime(),
    );
    const detail = await runtime.store.ticketDetail(reply.ref);
    const sent = detail!.messages.filter((m) => m.kind === 'agent-reply').at(-1)!;
    const fresh = /\/t\/([A-Za-z0-9_-]{43})/.exec(sent.text)![1]!;
    expect(fresh).not.toBe(t.token);
    expect((await page(fresh)).statusCode).toBe(200);
    expect((await page(t.token)).statusCode).toBe(404);
    // The revocation is recorded, but only internally.
    expect(detail!.events).toContainEqual(
      expect.objectContaining({ type: 'links-revoked', public: false, detail: { count: 1 } }),
    );
  });

  it('expire the configured number of days after the ticket closes', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'expire@customer.example' });
    const unknown = await page('F'.repeat(43));
    await runtime.store.setStatus(t.ref, 'closed', { now: clock.now().getTime() });
    clock.advance(30 * DAY);
    const stillOpen = await page(t.token);
    expect(stillOpen.statusCode).toBe(200);
    expect(stillOpen.body).toContain('Closed</p>');
    expect(stillOpen.body).not.toMatch(/ahead of yours|next request in line/);
    clock.advance(1);
    const expired = await page(t.token);
    expect(expired.statusCode).toBe(404);
    expect(expired.body).toBe(unknown.body);
    expect(withoutDate(expired.headers)).toEqual(withoutDate(unknown.headers));
  });
});

describe('every response', () => {
  it('carries the security headers, including errors', async () => {
    ip = freshIp();
    const t = await openTicket({ from: 'headers@customer.example' });
    readinessImpl = async () => {
      throw new Error('boom at /secret/path');
    };
    const responses = [
      await page(t.token),
      await page('G'.repeat(43)),
      await get('/healthz'),
      await get('/readyz'),
      await get('/nowhere'),
      await app.inject({ method: 'POST', url: `/t/${t.token}`, remoteAddress: ip, payload: 'x' }),
    ];
    expect(responses.map((r) => r.statusCode)).toEqual([200, 404, 200, 500, 404, 404]);
    const expected = {
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-robots-tag': 'noindex',
      'x-content-type-options': 'nosniff',
      'content-security-policy':
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    };
    for (const [i, r] of responses.entries()) {
      expect([i, r.headers]).toEqual([i, expect.objectContaining(expected)]);
    }
    expect(responses[3]!.body).not.toContain('/secret/path');
  });
});

describe('health', () => {
  let health: ImapWorkerHealth;
  let counts: OutboxCounts;

  beforeAll(() => {
    readinessImpl = () =>
      checkReadiness({
        statusStore: runtime.statusPages,
        outboxCounts: async () => counts,
        mailboxes: [{ name: 'support', pollIntervalMs: 60_000, health: () => health }],
        clock,
      });
  });

  it('/healthz says the process is alive', async () => {
    const res = await get('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it('/readyz is 200 when the database takes writes, mailboxes are fresh and the outbox keeps up', async () => {
    health = { connected: true, lastPollAt: clock.now().getTime(), lastError: null, idle: true };
    counts = { pending: 3, failed: 1, sent: 10 };
    const res = await get('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      ok: true,
      database: { ok: true, error: null },
      mailboxes: [{ name: 'support', ok: true, connected: true, lastPollAt: clock.now().toISOString() }],
      outbox: { ok: true, pending: 3, failed: 1, limit: 1000 },
    });
  });

  it('/readyz accepts a disconnected mailbox polled within two intervals, not one polled before', async () => {
    counts = { pending: 0, failed: 0, sent: 0 };
    health = { connected: false, lastPollAt: clock.now().getTime() - 120_000, lastError: 'ECONNRESET', idle: false };
    expect((await get('/readyz')).statusCode).toBe(200);
    health = { ...health, lastPollAt: clock.now().getTime() - 120_001 };
    const res = await get('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json().mailboxes).toEqual([{ name: 'support', ok: false, connected: false, lastPollAt: expect.any(String) }]);
    expect(res.body).not.toContain('ECONNRESET');
    health = { ...health, lastPollAt: null };
    expect((await get('/readyz')).statusCode).toBe(503);
  });

  it('/readyz is 503 when the outbox backlog reaches the threshold', async () => {
    health = { connected: true, lastPollAt: null, lastError: null, idle: true };
    counts = { pending: 1000, failed: 0, sent: 0 };
    const res = await get('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json().outbox).toEqual({ ok: false, pending: 1000, failed: 0, limit: 1000 });
  });

  // PostgreSQL's side of a write probe that fails (a read-only database) is in postgres-engine.test.ts.
  it.skipIf(onPostgres)(
    '/readyz is 503 when the database is full: the lock is free but every write fails with SQLITE_FULL',
    async () => {
      counts = { pending: 0, failed: 0, sent: 0 };
      health = { connected: true, lastPollAt: clock.now().getTime(), lastError: null, idle: true };
      const db = dbOf(runtime);
      const limit = db.pragma('max_page_count', { simple: true }) as number;
      // Clamped to the current size: not one more page can be added.
      db.pragma('max_page_count = 1');
      try {
        expect(() => db.exec('CREATE TABLE readiness_full_check (x)')).toThrow(expect.objectContaining({ code: 'SQLITE_FULL' }));
        const res = await get('/readyz');
        expect(res.statusCode).toBe(503);
        expect(res.json().database).toEqual({ ok: false, error: 'SQLITE_FULL' });
      } finally {
        db.pragma(`max_page_count = ${limit}`);
      }
      expect((await get('/readyz')).statusCode).toBe(200);
    },
  );

  it.skipIf(onPostgres)('/readyz is 503 when the database cannot be written', async () => {
    counts = { pending: 0, failed: 0, sent: 0 };
    dbOf(runtime).pragma('query_only = ON');
    try {
      const res = await get('/readyz');
      expect(res.statusCode).toBe(503);
      expect(res.json().database).toEqual({ ok: false, error: 'SQLITE_READONLY' });
    } finally {
      dbOf(runtime).pragma('query_only = OFF');
    }
    expect((await get('/readyz')).statusCode).toBe(200);
  });
});

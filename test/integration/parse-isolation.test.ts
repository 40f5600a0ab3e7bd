// Parsing isolated from the rest of the daemon: on worker threads that are
// killed at the parse deadline, with attachment files kept only for the
// messages actually stored. Real Dovecot and SMTP; the workers run the
// build's parse-worker.js (run `npm run build` first, as for every
// integration test).

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/core/logger.js';
import { ParsePool, RECYCLE_AFTER_BYTES } from '../../src/parse/parse-pool.js';
import { PARSE_TIMEOUT } from '../../src/parse/parse-message.js';
import { customerMail, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';
import { dbOf } from '../harness/sqlite-store.js';

let env: TicketdEnv;
let ticketd: InProcess | null = null;
let pool: ParsePool | null = null;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterEach(async () => {
  await ticketd?.close();
  await pool?.close();
  ticketd = null;
  pool = null;
});
afterAll(async () => {
  await env?.stop();
});

const attachmentsDir = () => join(env.dir, 'data', 'attachments');
/** The attachment files on disk, staging included. */
function filesOnDisk(): string[] {
  const root = attachmentsDir();
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

function withAttachment(o: { messageId: string; received: string; subject: string }): string {
  return [
    `Received: from relay${o.received}.example by mx.example.com; ${new Date().toUTCString()}`,
    'From: Jane Customer <jane@customer.example>',
    `To: ${SUPPORT}`,
    `Subject: ${o.subject}`,
    `Message-ID: <${o.messageId}>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The invoice is attached.',
    '--b',
    'Content-Type: application/pdf; name="invoice.pdf"',
    'Content-Disposition: attachment; filename="invoice.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from('%PDF-1.4 invoice').toString('base64'),
    '--b--',
    '',
  ].join('\r\n');
}

async function open(o: { parseTimeoutMs?: number } = {}): Promise<InProcess> {
  ticketd = await env.open();
  pool = new ParsePool({ size: 2 });
  ticketd.runtime.pipeline.parser = pool;
  if (o.parseTimeoutMs !== undefined) ticketd.runtime.pipeline.parseTimeoutMs = o.parseTimeoutMs;
  return ticketd;
}

describe('attachments of messages not stored', () => {
  it('keeps one copy for one ticket when the same message arrives five times through different relays', async () => {
    const t = await open();
    for (let i = 0; i < 5; i++) {
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        withAttachment({ messageId: 'invoice-1@customer.example', received: String(i), subject: 'Invoice' }),
      );
    }
    await t.cycle();
    const tickets = await t.runtime.store.listTickets();
    expect(tickets.filter((x) => x.subject === 'Invoice')).toHaveLength(1);
    const files = filesOnDisk();
    expect(files).toHaveLength(1);
    // The copy kept is the one the stored message points to.
    const detail = dbOf(t.runtime)
      .prepare("SELECT attachments FROM messages WHERE message_id = 'invoice-1@customer.example'")
      .get() as {
      attachments: string;
    };
    expect(JSON.parse(detail.attachments).map((a: { path: string }) => a.path)).toEqual(files);
  });

  it('writes nothing that stays for a quarantined 10,000-part message', async () => {
    const t = await open();
    const before = filesOnDisk();
    const parts = Array.from({ length: 10_000 }, (_, i) =>
      [
        '--b',
        `Content-Type: application/octet-stream; name="p${i}.bin"`,
        'Content-Disposition: attachment',
        '',
        `part ${i}`,
      ].join('\r\n'),
    );
    const bomb = [
      `From: mallory@attacker.example`,
      `To: ${SUPPORT}`,
      'Subject: bomb',
      'Message-ID: <bomb@attacker.example>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      ...parts,
      '--b--',
      '',
    ].join('\r\n');
    await env.dovecot.appendMessage(SUPPORT, 'INBOX', bomb);
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'After the bomb', messageId: 'after-bomb@customer.example', from: 'ann@customer.example' }),
    );
    await t.cycle();
    const quarantined = await t.runtime.store.listQuarantine();
    expect(quarantined.map((q) => q.reason)).toEqual([expect.stringMatching(/^parse-failed: /)]);
    expect((await t.runtime.store.listTickets()).map((x) => x.subject)).toContain('After the bomb');
    expect(filesOnDisk()).toEqual(before);
  });
});

describe('a parse past its deadline', () => {
  /** 15 MB of HTML table: converting even its first MiB takes far longer than the deadline below. */
  const slowMail = () =>
    [
      'From: Mallory <mallory@attacker.example>',
      `To: ${SUPPORT}`,
      'Subject: table',
      'Message-ID: <table@attacker.example>',
      'MIME-Version: 1.0',
      'Content-Type: text/html; charset=utf-8',
      '',
      `<table>${Array.from({ length: 300_000 }, (_, i) => `<tr><td>row ${i}</td><td>cell</td></tr>`).join('\r\n')}</table>`,
      '',
    ].join('\r\n');

  it('is stopped by terminating its worker; the message is quarantined and other mail is parsed meanwhile and after', async () => {
    pool = new ParsePool({ size: 2 });
    const opts = { attachmentsDir: join(env.dir, 'pool-att'), maxAttachmentBytes: 0 };
    const plain = Buffer.from(customerMail({ subject: 'Plain', messageId: 'plain@customer.example' }));
    const slow = pool.parse(Buffer.from(slowMail()), { ...opts, timeoutMs: 20 });
    const other = pool.parse(plain, { ...opts, timeoutMs: 60_000 });
    expect(await slow).toEqual({ ok: false, reason: PARSE_TIMEOUT });
    expect((await other).ok).toBe(true);
    // The killed thread is replaced: the pool goes on parsing.
    const after = await pool.parse(plain, { ...opts, timeoutMs: 60_000 });
    expect(after.ok && after.message.subject).toBe('Plain');
  });

  it('quarantines the message as parse-timeout and takes the rest of the mailbox, acknowledgements included', async () => {
    const t = await open({ parseTimeoutMs: 20 });
    await env.dovecot.appendMessage(SUPPORT, 'INBOX', slowMail());
    await t.cycle();
    expect((await t.runtime.store.listQuarantine()).map((q) => q.reason)).toContain(PARSE_TIMEOUT);
    // The mailbox goes on: later mail is taken and answered as usual.
    t.runtime.pipeline.parseTimeoutMs = 60_000;
    const acks = env.smtp.messages.length;
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Next customer', messageId: 'next@customer.example', from: 'next@customer.example' }),
    );
    await t.cycle();
    expect((await t.runtime.store.listTickets()).map((x) => x.subject)).toContain('Next customer');
    await env.smtp.waitFor(acks + 1, 20_000);
    const folder = await env.dovecot.listFolder(SUPPORT, 'Quarantine');
    expect(folder.map((m) => m.messageId)).toContain('<table@attacker.example>');
  });
});

describe('memory after a large message', () => {
  it('replaces the thread that parsed it, and the next message still parses', async () => {
    const entries: Record<string, any>[] = [];
    const logger = createLogger({ level: 'info', dest: { write: (line: string) => void entries.push(JSON.parse(line)) } });
    pool = new ParsePool({ size: 1, logger });
    const opts = { attachmentsDir: join(env.dir, 'pool-large'), maxAttachmentBytes: 0 };
    const small = Buffer.from(customerMail({ subject: 'small', messageId: 'small@customer.example' }));
    const large = Buffer.from(
      customerMail({ subject: 'large', messageId: 'large@customer.example', body: 'x'.repeat(76).concat('\r\n').repeat(60_000) }),
    );
    expect(large.length).toBeGreaterThanOrEqual(RECYCLE_AFTER_BYTES);
    expect((await pool.parse(small, opts)).ok).toBe(true);
    expect(entries.filter((e) => e.code === 'PARSE_WORKER_REPLACED')).toEqual([]);
    expect((await pool.parse(large, opts)).ok).toBe(true);
    expect(entries.filter((e) => e.code === 'PARSE_WORKER_REPLACED')).toEqual([
      expect.objectContaining({ level: 'info', bytes: large.length }),
    ]);
    expect((await pool.parse(small, opts)).ok).toBe(true);
  });
});

describe('mail taken ahead of a backlog', () => {
  it('is parsed before the messages already waiting for a thread, in its own order', async () => {
    pool = new ParsePool({ size: 1 });
    pool.warm();
    const opts = { attachmentsDir: join(env.dir, 'pool-order'), maxAttachmentBytes: 0 };
    const mail = (n: string) => Buffer.from(customerMail({ subject: n, messageId: `${n}@customer.example` }));
    const done: string[] = [];
    const parse = (n: string, first = false) => pool!.parse(mail(n), opts, first).then(() => done.push(n));
    const waiting = ['backlog-1', 'backlog-2', 'backlog-3', 'backlog-4'].map((n) => parse(n));
    const ahead = ['new-1', 'new-2'].map((n) => parse(n, true));
    await Promise.all([...waiting, ...ahead]);
    // The one thread may already hold the first message of the backlog; the new mail comes next, in order.
    expect(done.filter((n) => n.startsWith('new-'))).toEqual(['new-1', 'new-2']);
    expect(done.indexOf('new-2')).toBeLessThan(done.indexOf('backlog-2'));
  });
});

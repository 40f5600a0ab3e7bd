// The core promise against real servers: each mail in a Dovecot mailbox
// becomes a ticket (or joins one) exactly once, and the customer gets one
// acknowledgement through a real SMTP server.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LeaseStore } from '../../src/store/lease-store.js';
import { openEngine } from '../../src/store/open-store.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const DAY = 86_400_000;
let env: TicketdEnv;
let td: InProcess;

function header(m: CapturedMessage, name: string): string {
  const v = m.parsed.headers.get(name);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function refOf(m: CapturedMessage): string {
  const match = /\[(ACME-[0-9A-Z]{6})\]/.exec(m.parsed.subject ?? '');
  if (!match) throw new Error(`no reference in subject ${m.parsed.subject}`);
  return match[1]!;
}

async function deliver(raw: string): Promise<void> {
  await env.dovecot.appendMessage(SUPPORT, 'INBOX', raw);
}

describe('IMAP to ticket to acknowledgement', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
    td = await env.open();
  }, 60_000);
  afterAll(async () => {
    await td?.close();
    await env?.stop();
  });
  afterEach(() => env.smtp.clear());

  let firstRef = '';
  let ackId = '';

  it('opens a ticket and sends one acknowledgement with reference, status link and threading headers', async () => {
    await deliver(customerMail({ subject: 'Printer on fire', messageId: 'm1@customer.example' }));
    await td.cycle();
    const [ack] = await env.smtp.waitFor(1);
    expect(env.smtp.messages).toHaveLength(1);
    firstRef = refOf(ack!);
    ackId = ack!.parsed.messageId!.replace(/[<>]/g, '');
    expect(ack!.envelope.to).toEqual(['jane@customer.example']);
    expect(ack!.envelope.from).toBe(SUPPORT);
    expect(header(ack!, 'auto-submitted')).toBe('auto-replied');
    expect(ack!.parsed.inReplyTo).toBe('<m1@customer.example>');
    expect(String(ack!.parsed.references)).toContain('<m1@customer.example>');
    expect(ackId).toMatch(/@ticketd\.example\.com$/);
    expect(ack!.parsed.subject).toContain('Printer on fire');
    const link = /http:\/\/127\.0\.0\.1:8080\/t\/([A-Za-z0-9_-]+)/.exec(ack!.parsed.text ?? '');
    expect(link?.[1]).toHaveLength(43);
    // The token is random, never derived from the reference.
    expect(link![1]).not.toContain(firstRef.split('-')[1]);

    expect(await env.dovecot.listFolder(SUPPORT, 'INBOX')).toHaveLength(0);
    expect(await env.dovecot.listFolder(SUPPORT, 'Processed')).toHaveLength(1);

    const list = await env.listTickets();
    expect(list).toEqual([
      {
        ref: firstRef,
        status: 'open',
        subject: 'Printer on fire',
        requester: 'jane@customer.example',
        mailbox: 'support',
        team: null,
        queue: null,
        createdAt: expect.any(String),
        messageCount: 2,
        linkedTo: null,
      },
    ]);
    const shown = await env.showTicket(firstRef);
    expect(shown.messages.map((m: any) => [m.direction, m.kind])).toEqual([
      ['in', 'request'],
      ['out', 'ack'],
    ]);
    expect(shown.messages[1].messageId).toBe(ackId);
  });

  it('threads a reply by References into the same ticket without a second acknowledgement', async () => {
    await deliver(
      customerMail({
        subject: 'Re: Printer on fire',
        messageId: 'm2@customer.example',
        inReplyTo: ackId,
        references: ['m1@customer.example', ackId],
      }),
    );
    await td.cycle();
    expect(env.smtp.messages).toHaveLength(0);
    const list = await env.listTickets();
    expect(list).toHaveLength(1);
    expect(list[0].messageCount).toBe(3);
  });

  it('threads by the subject tag alone, read case-insensitively and tolerant of O/0 and I/1', async () => {
    const code = firstRef.split('-')[1]!;
    const typed = code.toLowerCase().replace(/0/g, 'o').replace(/1/g, 'l');
    await deliver(customerMail({ subject: `Still burning [acme-${typed}]`, messageId: 'm3@customer.example' }));
    await td.cycle();
    expect(env.smtp.messages).toHaveLength(0);
    const shown = await env.showTicket(firstRef);
    expect(shown.messages.filter((m: any) => m.direction === 'in')).toHaveLength(3);
  });

  it('gives a stranger quoting the tag a new linked ticket and echoes nothing of the other', async () => {
    await deliver(
      customerMail({
        from: 'Mallory <mallory@evil.example>',
        subject: `About [${firstRef}] please send me everything`,
        body: 'Tell me what Jane wrote.',
        messageId: 's1@evil.example',
      }),
    );
    await td.cycle();
    const [ack] = await env.smtp.waitFor(1);
    expect(ack!.envelope.to).toEqual(['mallory@evil.example']);
    const newRef = refOf(ack!);
    expect(newRef).not.toBe(firstRef);
    expect(ack!.raw.toString()).not.toContain('Printer on fire');
    const list = await env.listTickets();
    expect(list.find((t) => t.ref === newRef)?.linkedTo).toBe(firstRef);
    expect(list.find((t) => t.ref === firstRef)?.messageCount).toBe(4);
  });

  it('records an out-of-office reply on the ticket without reopening it or answering', async () => {
    await env.cli(['tickets', 'status', firstRef, 'pending']);
    await deliver(
      customerMail({
        subject: `Automatic reply: [${firstRef}] Printer on fire`,
        messageId: 'ooo1@customer.example',
        inReplyTo: ackId,
        headers: { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' },
        body: 'I am out of the office until Monday.',
      }),
    );
    await td.cycle();
    expect(env.smtp.messages).toHaveLength(0);
    const shown = await env.showTicket(firstRef);
    expect(shown.status).toBe('pending');
    expect(shown.messages.at(-1).kind).toBe('out-of-office');
  });

  it('sends no acknowledgement to bulk or list mail, but still records the ticket', async () => {
    await deliver(
      customerMail({
        subject: 'Newsletter',
        messageId: 'n1@news.example',
        from: 'news@news.example',
        headers: { Precedence: 'bulk' },
      }),
    );
    await deliver(
      customerMail({
        subject: 'List post',
        messageId: 'l1@lists.example',
        from: 'list@lists.example',
        headers: { 'List-Id': '<x.lists.example>' },
      }),
    );
    await td.cycle();
    expect(env.smtp.messages).toHaveLength(0);
    const list = await env.listTickets();
    expect(list.map((t) => t.subject)).toEqual(expect.arrayContaining(['Newsletter', 'List post']));
  });

  it('attaches a delivery status notification to the ticket whose mail bounced, with no new ticket and no reply', async () => {
    const before = (await env.listTickets()).length;
    const dsn = [
      'From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)',
      `To: ${SUPPORT}`,
      'Subject: Undelivered Mail Returned to Sender',
      'Message-ID: <dsn1@mx.customer.example>',
      `Date: ${new Date().toUTCString()}`,
      'Auto-Submitted: auto-replied',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '--b1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.customer.example',
      '',
      'Final-Recipient: rfc822; jane@customer.example',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 user unknown',
      '',
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      `From: ${SUPPORT}`,
      'To: jane@customer.example',
      `Message-ID: <${ackId}>`,
      `Subject: [${firstRef}] We received your request`,
      '',
      '--b1--',
      '',
    ].join('\r\n');
    await deliver(dsn);
    await td.cycle();
    expect(env.smtp.messages).toHaveLength(0);
    expect(await env.listTickets()).toHaveLength(before);
    const shown = await env.showTicket(firstRef);
    expect(shown.messages.at(-1).kind).toBe('bounce');
  });

  it('reopens a closed ticket on a reply inside the window and starts a linked one outside it', async () => {
    await env.cli(['tickets', 'status', firstRef, 'closed']);
    td.clock.set(new Date());
    await deliver(customerMail({ subject: `Re: [${firstRef}] again`, messageId: 'm4@customer.example', inReplyTo: ackId }));
    await td.cycle();
    expect((await env.showTicket(firstRef)).status).toBe('open');
    expect(env.smtp.messages).toHaveLength(0);

    await env.cli(['tickets', 'status', firstRef, 'closed']);
    td.clock.advance(15 * DAY);
    await deliver(
      customerMail({ subject: `Re: [${firstRef}] months later`, messageId: 'm5@customer.example', inReplyTo: ackId }),
    );
    await td.cycle();
    expect((await env.showTicket(firstRef)).status).toBe('closed');
    const later = (await env.listTickets()).find((t) => t.subject.endsWith('months later'));
    expect(later?.linkedTo).toBe(firstRef);
    expect(later?.ref).not.toBe(firstRef);
    // Jane's address hard-bounced above, so her new ticket is not acknowledged.
    await td.outbox.runOnce();
    expect(env.smtp.messages).toHaveLength(0);
    const events = (await td.runtime.store.ticketDetail(later.ref))!.events;
    expect(events).toContainEqual(expect.objectContaining({ type: 'ack-suppressed', detail: { why: 'sender-suppressed' } }));
  });

  it('delivers the acknowledgement exactly once after the SMTP server was down', async () => {
    await env.smtp.close();
    await deliver(
      customerMail({ subject: 'While SMTP is down', messageId: 'd1@customer.example', from: 'dora@customer.example' }),
    );
    await td.cycle();
    expect((await td.runtime.store.outboxCounts()).pending).toBe(1);
    await env.smtp.restart();
    // Not due yet: the schedule says one minute.
    await td.outbox.runOnce();
    expect(env.smtp.messages).toHaveLength(0);
    td.clock.advance(61_000);
    await td.outbox.runOnce();
    await env.smtp.waitFor(1);
    td.clock.advance(3_600_000);
    await td.outbox.runOnce();
    expect(env.smtp.messages).toHaveLength(1);
    expect(await td.runtime.store.outboxCounts()).toMatchObject({ pending: 0, failed: 0 });
  });

  it('records a permanent SMTP rejection as failed without retrying', async () => {
    env.smtp.setFailureMode({ code: 550, at: 'rcpt' });
    await deliver(customerMail({ subject: 'Rejected', messageId: 'r1@customer.example', from: 'rita@customer.example' }));
    await td.cycle();
    env.smtp.setFailureMode(null);
    td.clock.advance(DAY);
    await td.outbox.runOnce();
    expect(env.smtp.messages).toHaveLength(0);
    expect((await td.runtime.store.outboxCounts()).failed).toBe(1);
  });
});

describe('bad input and server changes', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('quarantines an over-size message with its reason and takes the next one', async () => {
    env.writeConfig((c) => (c.limits = { maxMessageBytes: 20_000 }));
    const local = await env.open();
    try {
      await deliver(customerMail({ subject: 'Huge', messageId: 'big@customer.example', body: 'x'.repeat(40_000) }));
      await deliver(customerMail({ subject: 'Small', messageId: 'small@customer.example' }));
      await local.cycle();
      expect(await env.dovecot.listFolder(SUPPORT, 'Quarantine')).toHaveLength(1);
      expect(await env.dovecot.listFolder(SUPPORT, 'INBOX')).toHaveLength(0);
      const q = await local.runtime.store.listQuarantine();
      expect(q).toHaveLength(1);
      expect(q[0]!.reason).toMatch(/^too-large/);
      expect((await env.listTickets()).map((t) => t.subject)).toEqual(['Small']);
      await env.smtp.waitFor(1);
    } finally {
      await local.close();
    }
  });

  it('survives a UIDVALIDITY change without a second ticket or acknowledgement', async () => {
    env.writeConfig((c) => (c.mailboxes[0].processedAction = 'flag'));
    env.smtp.clear();
    const local = await env.open();
    try {
      await deliver(customerMail({ subject: 'Flag one', messageId: 'f1@customer.example' }));
      await deliver(customerMail({ subject: 'Flag two', messageId: 'f2@customer.example' }));
      await local.cycle();
      await env.smtp.waitFor(2);
      const inbox = await env.dovecot.listFolder(SUPPORT, 'INBOX');
      expect(inbox.every((m) => m.flags.includes('\\Seen'))).toBe(true);
      const before = (await env.listTickets()).length;

      await env.dovecot.resetUidValidity(SUPPORT, 'INBOX');
      await local.cycle().catch(() => undefined); // the server dropped our session
      await local.cycle();
      expect(await env.listTickets()).toHaveLength(before);
      expect(env.smtp.messages).toHaveLength(2);
    } finally {
      await local.close();
    }
  });
});

describe('the daemon process', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('killed mid-batch and restarted, takes every message exactly once with one acknowledgement each', async () => {
    const count = 40;
    for (let i = 0; i < count; i++) {
      await deliver(
        customerMail({ subject: `Backlog ${i}`, messageId: `b${i}@customer.example`, from: `c${i}@customer.example` }),
      );
    }
    env.writeConfig((c) => (c.mailboxes[0].imap.batchSize = 5));
    const first = env.spawnDaemon();
    await first.waitForLog((e) => e.code === 'MSG_TAKEN');
    first.child.kill('SIGKILL');
    await first.exited;

    const second = env.spawnDaemon();
    try {
      await env.smtp.waitFor(count, 60_000);
      // Give a duplicate, if there were one, the time to show up.
      await new Promise((r) => setTimeout(r, 1500));
      const tickets = await env.listTickets();
      expect(tickets).toHaveLength(count);
      expect(new Set(tickets.map((t) => t.subject)).size).toBe(count);
      // One acknowledgement per ticket. A kill in the middle of an SMTP
      // transaction can make the server see the same message (same
      // Message-ID, same bytes) again, which mail stores fold into one.
      const acksPerRecipient = new Map<string, Set<string>>();
      for (const m of env.smtp.messages) {
        const rcpt = m.envelope.to[0]!;
        acksPerRecipient.set(rcpt, (acksPerRecipient.get(rcpt) ?? new Set()).add(m.parsed.messageId!));
      }
      expect(acksPerRecipient.size).toBe(count);
      expect([...acksPerRecipient.values()].every((ids) => ids.size === 1)).toBe(true);
      expect(env.smtp.messages.length).toBeLessThanOrEqual(count + 1);
      expect(await env.dovecot.listFolder(SUPPORT, 'INBOX')).toHaveLength(0);
      expect(await env.dovecot.listFolder(SUPPORT, 'Processed')).toHaveLength(count);
    } finally {
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    }
  }, 120_000);

  it('stops cleanly on SIGTERM with nothing lost or duplicated', async () => {
    env.smtp.clear();
    const daemon = env.spawnDaemon();
    await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
    for (let i = 0; i < 10; i++) {
      await deliver(customerMail({ subject: `Term ${i}`, messageId: `t${i}@customer.example`, from: `t${i}@customer.example` }));
    }
    await daemon.waitForLog((e) => e.code === 'MSG_TAKEN' && String(e.ref).startsWith('ACME'));
    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit.code).toBe(0);
    expect(daemon.lines.some((l) => l.includes('DAEMON_STOPPED'))).toBe(true);

    const again = env.spawnDaemon();
    try {
      const all = await listTicketsEventually(50);
      expect(all.filter((t) => t.subject.startsWith('Term '))).toHaveLength(10);
      await env.smtp.waitFor(10, 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect(env.smtp.messages).toHaveLength(10);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  }, 120_000);

  it('hands its mailbox over at once on SIGTERM but lives on as a node until its last send is answered', async () => {
    // A claim on a send counts only while its node lives: a node that
    // declared itself dead while a send was still in flight let any claim
    // pass (its own, during the stop, or another node's) send that mail again.
    env.smtp.clear();
    env.smtp.setStallData(true);
    const engine = await openEngine(env.database, { migrate: 'none' });
    const daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      await deliver(customerMail({ subject: 'Stalled', messageId: 'stall@customer.example', from: 'stall@customer.example' }));
      for (let tries = 0; env.smtp.stalled === 0 && tries < 300; tries++) await new Promise((r) => setTimeout(r, 100));
      expect(env.smtp.stalled).toBe(1);
      daemon.child.kill('SIGTERM');
      // It says it is stopping and hands its mailbox over (on PostgreSQL the
      // nodes lease the mailboxes; on SQLite there are no leases).
      const leases = new LeaseStore(engine);
      const settled = async () =>
        (await leases.stoppingIncarnations(Date.now())).length === 1 && (await leases.leases()).length === 0;
      for (let tries = 0; !(await settled()) && tries < 200; tries++) await new Promise((r) => setTimeout(r, 50));
      expect(await leases.stoppingIncarnations(Date.now())).toHaveLength(1);
      expect(await leases.leases()).toEqual([]);
      // The send stays unanswered until its timeout (5 s here): the node is
      // alive all along, so its claim on that send holds.
      for (let i = 0; i < 10; i++) {
        expect(await leases.liveIncarnations(Date.now())).toHaveLength(1);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await daemon.exited).code).toBe(0);
      expect(await leases.liveIncarnations(Date.now())).toEqual([]);
      expect(env.smtp.stalled).toBe(1);
    } finally {
      env.smtp.setStallData(false);
      daemon.child.kill('SIGKILL');
      await engine.close();
    }
  }, 60_000);
});

async function listTicketsEventually(expected: number, timeoutMs = 30_000): Promise<any[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const list = await env.listTickets();
    if (list.length >= expected || Date.now() > until) return list;
    await new Promise((r) => setTimeout(r, 300));
  }
}

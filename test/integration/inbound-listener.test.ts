// The LMTP/SMTP listener against real clients: nodemailer, and a raw socket
// speaking the protocol line by line where the test needs exact replies or
// has to kill the daemon between the final "." and the answer.

import net from 'node:net';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { startInboundListener, type InboundListener } from '../../src/sources/lmtp/inbound-listener.js';
import { freePort } from '../harness/free-port.js';
import {
  customerMail,
  startTicketdEnv,
  SUPPORT,
  type DaemonProcess,
  type InProcess,
  type TicketdEnv,
} from '../harness/ticketd-env.js';

interface Reply {
  code: number;
  text: string;
}

/** A client that speaks SMTP/LMTP one command at a time, as an MTA does. */
class RawClient {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered += d.toString('latin1');
      for (let i = this.buffered.indexOf('\r\n'); i >= 0; i = this.buffered.indexOf('\r\n')) {
        this.lines.push(this.buffered.slice(0, i));
        this.buffered = this.buffered.slice(i + 2);
      }
      this.waiter?.();
    });
    const end = () => {
      this.closed = true;
      this.waiter?.();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** The next complete (possibly multi-line) reply. */
  async reply(timeoutMs = 15_000): Promise<Reply> {
    const collected: string[] = [];
    const until = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        collected.push(line);
        if (/^\d{3} /.test(line)) return { code: Number(line.slice(0, 3)), text: collected.join('\n') };
        continue;
      }
      if (this.closed) throw new Error(`connection closed; partial reply: ${collected.join('\n')}`);
      if (Date.now() > until) throw new Error('no reply in time');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiter = () => {
          clearTimeout(t);
          r();
        };
      });
      this.waiter = null;
    }
  }

  /** A complete reply already received, without waiting for one. */
  pendingReply(): Reply | null {
    const end = this.lines.findIndex((l) => /^\d{3} /.test(l));
    if (end < 0) return null;
    const collected = this.lines.splice(0, end + 1);
    return { code: Number(collected[end]!.slice(0, 3)), text: collected.join('\n') };
  }

  write(data: string): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Dot-stuffed DATA payload with the terminating line. */
function dataPayload(raw: string): string {
  const body = raw.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  return `${body.endsWith('\r\n') ? body : `${body}\r\n`}.\r\n`;
}

/** Greeting, LHLO/EHLO, MAIL and RCPTs; returns the client and the RCPT replies. */
async function openTransaction(port: number, lmtp: boolean, from: string, rcpts: string[]) {
  const c = await RawClient.connect(port);
  expect((await c.reply()).code).toBe(220);
  const hello = await c.command(`${lmtp ? 'LHLO' : 'EHLO'} mta.test`);
  expect(hello.code).toBe(250);
  expect((await c.command(`MAIL FROM:<${from}>`)).code).toBe(250);
  const rcptReplies: Reply[] = [];
  for (const r of rcpts) rcptReplies.push(await c.command(`RCPT TO:<${r}>`));
  return { c, hello, rcptReplies };
}

let env: TicketdEnv;

describe('inbound listener (LMTP, in process)', () => {
  let td: InProcess;
  let listener: InboundListener;

  const tickets = () => td.runtime.store.listTickets();

  beforeAll(async () => {
    env = await startTicketdEnv();
    env.writeConfig((c) => {
      c.mailboxes[0].aliases = ['help@example.com'];
      c.mailboxes.push({ name: 'billing', address: 'billing@example.com', referencePrefix: 'BILL' });
      c.inbound = { port: 2424, mailbox: 'support', maxMessageBytes: 50_000 };
    });
    td = await env.open();
    listener = await startInboundListener({
      config: { ...td.runtime.config.inbound!, port: 0 },
      pipeline: td.runtime.pipeline,
      mailboxes: () => td.runtime.config.mailboxes,
      logger: silentLogger(),
    });
  }, 60_000);
  afterAll(async () => {
    await listener?.close();
    await td?.close();
    await env?.stop();
  });

  it('takes a message from nodemailer over LMTP: the ticket is committed when 250 arrives, and the ack goes out', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: listener.port,
      lmtp: true,
      secure: false,
      ignoreTLS: true,
    });
    const info = await transport.sendMail({
      envelope: { from: 'jane@customer.example', to: [SUPPORT] },
      raw: customerMail({ subject: 'Over LMTP', messageId: 'lmtp1@customer.example' }),
    });
    transport.close();
    expect(info.accepted).toEqual([SUPPORT]);
    expect(info.response).toMatch(/^250 2\.6\.0 taken ACME-[0-9A-Z]{6}$/);
    const ref = /ACME-[0-9A-Z]{6}/.exec(info.response)![0];
    // Read straight after the reply, before anything else runs: the commit came first.
    const list = await tickets();
    expect(list.map((t) => [t.ref, t.subject, t.mailbox])).toEqual([[ref, 'Over LMTP', 'support']]);
    expect((await td.runtime.store.outboxCounts()).pending).toBe(1);

    await td.outbox.runOnce();
    const [ack] = await env.smtp.waitFor(1);
    expect(ack!.envelope.to).toEqual(['jane@customer.example']);
    expect(ack!.parsed.subject).toContain(`[${ref}]`);
  });

  it('advertises the size limit and answers each recipient: own addresses and aliases 250, others 550', async () => {
    const { c, hello, rcptReplies } = await openTransaction(listener.port, true, 'joe@customer.example', [
      SUPPORT,
      'help@example.com',
      'billing@example.com',
      'sales@example.com',
    ]);
    expect(hello.text).toMatch(/^250[- ]SIZE 50000$/m);
    expect(hello.text).not.toContain('STARTTLS');
    expect(hello.text).not.toContain('AUTH');
    expect(rcptReplies.map((r) => r.code)).toEqual([250, 250, 250, 550]);
    expect(rcptReplies[3]!.text).toContain('<sales@example.com>: no such mailbox here');

    expect((await c.command('DATA')).code).toBe(354);
    c.write(
      dataPayload(
        customerMail({
          from: 'joe@customer.example',
          to: `${SUPPORT}, billing@example.com`,
          subject: 'Two desks',
          messageId: 'two@customer.example',
        }),
      ),
    );
    const replies = [await c.reply(), await c.reply(), await c.reply()];
    c.close();
    expect(replies.map((r) => r.code)).toEqual([250, 250, 250]);
    const [support, alias, billing] = replies.map((r) => r.text.replace(/^250 2\.6\.0 /, ''));
    // The address and its alias lead to one mailbox: one ticket, reported to both.
    expect(support).toMatch(/^taken ACME-[0-9A-Z]{6}$/);
    expect(alias).toBe(support);
    // One message to two desks is one ticket with one acknowledgement; the
    // second desk's answer names the ticket the first one opened.
    expect(billing).toBe(support!.replace(/^taken/, 'duplicate'));
    const twoDesks = (await tickets()).filter((t) => t.subject === 'Two desks');
    expect(twoDesks.map((t) => t.mailbox)).toEqual(['support']);
  });

  it('records the envelope sender as Return-Path, so mail from the null sender gets no automatic reply', async () => {
    const before = (await td.runtime.store.outboxCounts()).pending;
    const { c } = await openTransaction(listener.port, true, '', [SUPPORT]);
    expect((await c.command('DATA')).code).toBe(354);
    c.write(
      dataPayload(
        customerMail({ from: 'robot@customer.example', subject: 'From the null sender', messageId: 'null@customer.example' }),
      ),
    );
    const reply = await c.reply();
    c.close();
    expect(reply.code).toBe(250);
    expect((await tickets()).map((t) => t.subject)).toContain('From the null sender');
    expect((await td.runtime.store.outboxCounts()).pending).toBe(before);
  });

  it('refuses an over-size message with 552, declared in MAIL FROM or found in DATA, and takes nothing', async () => {
    const declared = await RawClient.connect(listener.port);
    await declared.reply();
    await declared.command('LHLO mta.test');
    const mailFrom = await declared.command('MAIL FROM:<big@customer.example> SIZE=60000');
    declared.close();
    expect(mailFrom.code).toBe(552);

    const { c } = await openTransaction(listener.port, true, 'big@customer.example', [SUPPORT]);
    expect((await c.command('DATA')).code).toBe(354);
    c.write(
      dataPayload(customerMail({ subject: 'Too big for LMTP', messageId: 'big@customer.example', body: 'z'.repeat(60_000) })),
    );
    const reply = await c.reply();
    // The session goes on after a refused message.
    expect((await c.command('RSET')).code).toBe(250);
    c.close();
    expect(reply.code).toBe(552);
    expect((await tickets()).map((t) => t.subject)).not.toContain('Too big for LMTP');
    expect(await td.runtime.store.listQuarantine()).toEqual([]);
  });

  it('answers 451 when the commit fails (database locked), so the MTA retries; the retry takes it once', async () => {
    const mail = customerMail({
      subject: 'Locked LMTP',
      messageId: 'locked-lmtp@customer.example',
      from: 'lena@customer.example',
    });
    const db = new BetterSqlite3(join(env.dir, 'data', 'ticketd.sqlite'));
    const { c } = await openTransaction(listener.port, true, 'lena@customer.example', [SUPPORT]);
    let refused: Reply;
    try {
      db.exec('BEGIN EXCLUSIVE');
      expect((await c.command('DATA')).code).toBe(354);
      c.write(dataPayload(mail));
      refused = await c.reply();
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    expect(refused.code).toBe(451);
    expect(refused.text).toMatch(/^451 4\.3\.0 /);
    expect((await tickets()).filter((t) => t.subject === 'Locked LMTP')).toHaveLength(0);

    expect((await c.command('MAIL FROM:<lena@customer.example>')).code).toBe(250);
    expect((await c.command(`RCPT TO:<${SUPPORT}>`)).code).toBe(250);
    expect((await c.command('DATA')).code).toBe(354);
    c.write(dataPayload(mail));
    const accepted = await c.reply();
    c.close();
    expect(accepted.text).toMatch(/^250 2\.6\.0 taken ACME-/);
    expect((await tickets()).filter((t) => t.subject === 'Locked LMTP')).toHaveLength(1);
  }, 30_000);

  it('speaks plain SMTP when configured, and close() does not wait for an idle client', async () => {
    const smtp = await startInboundListener({
      config: { ...td.runtime.config.inbound!, port: 0, protocol: 'smtp' },
      pipeline: td.runtime.pipeline,
      mailboxes: () => td.runtime.config.mailboxes,
      logger: silentLogger(),
    });
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtp.port, secure: false, ignoreTLS: true });
    const info = await transport.sendMail({
      envelope: { from: 'sam@customer.example', to: ['help@example.com'] },
      raw: customerMail({
        from: 'sam@customer.example',
        to: 'help@example.com',
        subject: 'Over SMTP',
        messageId: 'smtp1@customer.example',
      }),
    });
    transport.close();
    expect(info.response).toMatch(/^250 2\.6\.0 taken ACME-/);
    expect((await tickets()).find((t) => t.subject === 'Over SMTP')?.mailbox).toBe('support');

    const idle = await RawClient.connect(smtp.port);
    await idle.reply();
    await idle.command('EHLO mta.test');
    const started = Date.now();
    await smtp.close();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await idle.reply()).code).toBe(421);
    idle.close();
  });
});

describe('the daemon killed between DATA and the reply', () => {
  let port: number;
  let daemon: DaemonProcess;

  const startDaemon = async () => {
    daemon = env.spawnDaemon();
    await daemon.waitForLog((e) => e.code === 'INBOUND_LISTENING');
  };

  beforeAll(async () => {
    env = await startTicketdEnv();
    port = await freePort();
    env.writeConfig((c) => (c.inbound = { port, protocol: 'lmtp' }));
  }, 60_000);
  afterAll(async () => {
    daemon?.child.kill('SIGKILL');
    await env?.stop();
  });

  /** When the daemon is killed, and whether the MTA delivers again although it got a 250 (the reply was lost). */
  type Kill = { name: string; at: 'before-dot' | 'after-reply' | 'after-dot'; delayMs: number; replyLost: boolean };
  const kills: Kill[] = [
    // The commit cannot have happened: the message never ended.
    { name: 'before the final dot', at: 'before-dot', delayMs: 0, replyLost: false },
    // It certainly happened. The MTA got its 250 and is done...
    { name: 'after the 250', at: 'after-reply', delayMs: 0, replyLost: false },
    // ...or the 250 was lost on the way and the MTA delivers again.
    { name: 'after the 250, reply lost', at: 'after-reply', delayMs: 0, replyLost: true },
    // Races with the commit: either order is possible. The MTA delivers again
    // unless the 250 reached it before the kill, as a real one would.
    ...[0, 0, 1, 3, 5, 10, 20].map(
      (delayMs): Kill => ({ name: `${delayMs} ms after the dot`, at: 'after-dot', delayMs, replyLost: false }),
    ),
  ];

  it('leaves exactly one ticket per message whichever happened first, the commit or the kill', async () => {
    await startDaemon();
    /** Per message: the reply to the redelivery, or why there was none. */
    const outcomes: string[] = [];
    for (const [i, kill] of kills.entries()) {
      const mail = customerMail({
        subject: `Killed ${i}`,
        messageId: `kill${i}@customer.example`,
        from: `k${i}@customer.example`,
      });
      const { c } = await openTransaction(port, true, `k${i}@customer.example`, [SUPPORT]);
      expect((await c.command('DATA')).code).toBe(354);
      const payload = dataPayload(mail);
      let answered: Reply | null = null;
      if (kill.at === 'before-dot') {
        c.write(payload.slice(0, -3));
      } else {
        c.write(payload);
        if (kill.at === 'after-reply') answered = await c.reply();
        else if (kill.delayMs > 0) await new Promise((r) => setTimeout(r, kill.delayMs));
      }
      daemon.child.kill('SIGKILL');
      await daemon.exited;
      answered ??= c.pendingReply();
      c.close();
      await startDaemon();

      if (answered !== null && !kill.replyLost) {
        // A 250 is a promise: the message must be in the database without any redelivery.
        expect(answered.code, kill.name).toBe(250);
        outcomes.push('answered before the kill');
        continue;
      }
      const retry = await openTransaction(port, true, `k${i}@customer.example`, [SUPPORT]);
      expect((await retry.c.command('DATA')).code).toBe(354);
      retry.c.write(payload);
      const reply = await retry.c.reply();
      retry.c.close();
      expect(reply.code, kill.name).toBe(250);
      outcomes.push(reply.text.replace(/^250 2\.6\.0 /, '').split(' ')[0]!);
    }
    expect(outcomes.slice(0, 3)).toEqual(['taken', 'answered before the kill', 'duplicate']);

    const r = await env.cli(['tickets', 'list', '--json']);
    const list = JSON.parse(r.stdout) as { subject: string }[];
    for (const i of kills.keys()) {
      expect(
        list.filter((t) => t.subject === `Killed ${i}`),
        `${kills[i]!.name}: ${outcomes[i]}`,
      ).toHaveLength(1);
    }
    expect(list).toHaveLength(kills.length);

    daemon.child.kill('SIGTERM');
    const exit = await daemon.exited;
    expect(exit.code).toBe(0);
    expect(daemon.lines.some((l) => l.includes('INBOUND_CLOSED'))).toBe(true);
  }, 120_000);
});

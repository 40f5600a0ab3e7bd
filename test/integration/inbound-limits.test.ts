// The LMTP listener's resource bounds against real sockets: the cap on
// connections, the idle and transaction deadlines against a client that
// trickles, and the byte budget under many parallel large deliveries to the
// daemon as a child process (its RSS read from /proc).

import { readFileSync } from 'node:fs';
import net from 'node:net';
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

/** Replies as they arrive on a socket, one SMTP reply (possibly multi-line) at a time. */
class Replies {
  private buffered = '';
  private readonly lines: string[] = [];
  private wake: (() => void) | null = null;
  closed = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffered += d.toString('latin1');
      for (let i = this.buffered.indexOf('\r\n'); i >= 0; i = this.buffered.indexOf('\r\n')) {
        this.lines.push(this.buffered.slice(0, i));
        this.buffered = this.buffered.slice(i + 2);
      }
      this.wake?.();
    });
    const end = () => {
      this.closed = true;
      this.wake?.();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static connect(port: number): Promise<Replies> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new Replies(socket)));
      socket.once('error', reject);
    });
  }

  /** The next reply's code and text, or null when the connection closed first. */
  async next(timeoutMs = 120_000): Promise<{ code: number; text: string } | null> {
    const until = Date.now() + timeoutMs;
    const collected: string[] = [];
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        collected.push(line);
        if (/^\d{3} /.test(line)) return { code: Number(line.slice(0, 3)), text: collected.join('\n') };
        continue;
      }
      if (this.closed) return null;
      if (Date.now() > until) throw new Error('no reply in time');
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
      this.wake = null;
    }
  }

  async command(line: string): Promise<{ code: number; text: string } | null> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** Writes respecting backpressure, as an MTA does. */
  async write(data: Buffer): Promise<void> {
    const step = 256 * 1024;
    for (let i = 0; i < data.length && !this.closed; i += step) {
      if (!this.socket.write(data.subarray(i, i + step))) {
        await new Promise<void>((r) => {
          const done = () => {
            this.socket.off('drain', done);
            this.socket.off('close', done);
            r();
          };
          this.socket.on('drain', done);
          this.socket.on('close', done);
        });
      }
    }
  }
}

/** One LMTP delivery as an MTA makes it; the final reply code (0 when the connection was dropped). */
async function deliver(port: number, payload: Buffer, o: { from: string; declareSize: boolean }): Promise<number> {
  const c = await Replies.connect(port);
  try {
    const greeting = await c.next();
    if (greeting?.code !== 220) return greeting?.code ?? 0;
    await c.command('LHLO mta.test');
    const mail = await c.command(`MAIL FROM:<${o.from}>${o.declareSize ? ` SIZE=${payload.length}` : ''}`);
    if (mail?.code !== 250) return mail?.code ?? 0;
    const rcpt = await c.command(`RCPT TO:<${SUPPORT}>`);
    if (rcpt?.code !== 250) return rcpt?.code ?? 0;
    const data = await c.command('DATA');
    if (data?.code !== 354) return data?.code ?? 0;
    await c.write(payload);
    return (await c.next())?.code ?? 0;
  } finally {
    c.socket.destroy();
  }
}

/** A customer mail of about `size` bytes on the wire: a small text and a base64 attachment. */
function bigMail(i: number, size: number): Buffer {
  const head = customerMail({
    subject: `Big ${i}`,
    messageId: `big${i}@customer.example`,
    from: `big${i}@customer.example`,
  }).replace(
    'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHello, my printer is on fire. Please help.\r\n',
    'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe log is attached.\r\n--b\r\nContent-Type: application/octet-stream; name="log.bin"\r\nContent-Disposition: attachment; filename="log.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n',
  );
  const line = `${'QUJD'.repeat(19)}\r\n`;
  const lines = Math.ceil((size - head.length) / line.length);
  return Buffer.concat([Buffer.from(head), Buffer.from(line.repeat(lines)), Buffer.from('--b--\r\n.\r\n')]);
}

function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kb = Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
  return Math.round(kb / 1024);
}

let env: TicketdEnv;

describe('inbound connection limits (in process)', () => {
  let td: InProcess;
  let listener: InboundListener;

  beforeAll(async () => {
    env = await startTicketdEnv();
    env.writeConfig((c) => {
      c.inbound = { port: 2424, maxConnections: 2, idleTimeoutMs: 1_500, transactionTimeoutMs: 4_000 };
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

  it('answers 421 to a connection over inbound.maxConnections, and serves again once one closes', async () => {
    const a = await Replies.connect(listener.port);
    const b = await Replies.connect(listener.port);
    expect((await a.next())?.code).toBe(220);
    expect((await b.next())?.code).toBe(220);
    const c = await Replies.connect(listener.port);
    const refused = await c.next();
    expect(refused?.code).toBe(421);
    expect(refused?.text).toContain('too many connections');
    c.socket.destroy();
    a.socket.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const d = await Replies.connect(listener.port);
    expect((await d.next())?.code).toBe(220);
    b.socket.destroy();
    d.socket.destroy();
  });

  it('drops a silent connection after inbound.idleTimeoutMs with 421', async () => {
    const c = await Replies.connect(listener.port);
    expect((await c.next())?.code).toBe(220);
    expect((await c.command('LHLO mta.test'))?.code).toBe(250);
    const dropped = await c.next(30_000);
    expect(dropped?.code).toBe(421);
    expect(await c.next(30_000)).toBeNull();
  });

  it('drops a client that trickles its message a byte at a time, after inbound.transactionTimeoutMs, and takes nothing', async () => {
    const c = await Replies.connect(listener.port);
    expect((await c.next())?.code).toBe(220);
    await c.command('LHLO mta.test');
    expect((await c.command('MAIL FROM:<slow@customer.example>'))?.code).toBe(250);
    expect((await c.command(`RCPT TO:<${SUPPORT}>`))?.code).toBe(250);
    expect((await c.command('DATA'))?.code).toBe(354);
    const payload = customerMail({ subject: 'Trickled', messageId: 'trickle@customer.example' });
    // Faster than the idle timeout, so only the whole-transaction deadline can stop it.
    let sent = 0;
    const trickle = setInterval(() => {
      if (!c.closed) c.socket.write(payload[sent++ % payload.length]!);
    }, 500);
    try {
      const dropped = await c.next(60_000);
      expect(dropped?.code).toBe(421);
      expect(dropped?.text).toContain('took too long');
      expect(await c.next(30_000)).toBeNull();
    } finally {
      clearInterval(trickle);
    }
    expect(sent).toBeGreaterThan(3);
    expect((await td.runtime.store.listTickets()).map((t) => t.subject)).not.toContain('Trickled');
  }, 90_000);

  it('drops a client that trickles its commands, which the idle timer alone never would', async () => {
    const c = await Replies.connect(listener.port);
    expect((await c.next())?.code).toBe(220);
    const line = 'LHLO mta.test\r\n';
    let sent = 0;
    const trickle = setInterval(() => {
      if (!c.closed) c.socket.write(line[sent++ % line.length]!);
    }, 500);
    try {
      let reply = await c.next(60_000);
      while (reply?.code === 250) reply = await c.next(60_000);
      expect(reply?.code).toBe(421);
    } finally {
      clearInterval(trickle);
    }
  }, 90_000);
});

describe('inbound byte budget (daemon)', () => {
  let daemon: DaemonProcess;
  let port: number;

  beforeAll(async () => {
    env = await startTicketdEnv();
    port = await freePort();
    // Defaults otherwise: 25 MiB per message, 64 MiB in flight, 32 connections.
    env.writeConfig((c) => (c.inbound = { port }));
    daemon = env.spawnDaemon();
    await daemon.waitForLog((e) => e.code === 'INBOUND_LISTENING');
  }, 60_000);
  afterAll(async () => {
    daemon?.child.kill('SIGTERM');
    await daemon?.exited;
    await env?.stop();
  });

  it('16 parallel 24 MB deliveries: some are deferred with 451, retries take all 16, and RSS stays within the budget and comes back', async () => {
    const pid = daemon.child.pid!;
    await new Promise((r) => setTimeout(r, 1_000));
    const baseline = rssMb(pid, 'VmRSS');
    const mails = Array.from({ length: 16 }, (_, i) => bigMail(i, 24 * 1_000_000));
    const firstRound = await Promise.all(
      mails.map((m, i) => deliver(port, m, { from: `big${i}@customer.example`, declareSize: i % 2 === 0 })),
    );
    const peakDuringBurst = rssMb(pid, 'VmHWM');
    // The MTA retries what was deferred, a few at a time, until everything is in.
    const codes = [...firstRound];
    for (let round = 0; round < 10 && codes.some((c) => c !== 250); round++) {
      const pending = codes.flatMap((c, i) => (c === 250 ? [] : [i]));
      const retried = await Promise.all(
        pending.slice(0, 4).map((i) => deliver(port, mails[i]!, { from: `big${i}@customer.example`, declareSize: true })),
      );
      pending.slice(0, 4).forEach((i, k) => {
        codes[i] = retried[k]!;
      });
    }
    const peak = rssMb(pid, 'VmHWM');
    let after = rssMb(pid, 'VmRSS');
    for (let i = 0; i < 30 && after > baseline + 150; i++) {
      await new Promise((r) => setTimeout(r, 1_000));
      after = rssMb(pid, 'VmRSS');
    }
    const deferred = firstRound.filter((c) => c === 451).length;
    console.log(
      `inbound budget: first round ${firstRound.filter((c) => c === 250).length} taken, ${deferred} deferred (451); ` +
        `RSS baseline ${baseline} MB, peak during burst ${peakDuringBurst} MB, peak overall ${peak} MB, after ${after} MB`,
    );
    expect(firstRound.every((c) => c === 250 || c === 451)).toBe(true);
    expect(deferred).toBeGreaterThan(0);
    expect(codes).toEqual(Array(16).fill(250));
    const subjects = (await env.cli(['tickets', 'list', '--json'])).stdout;
    for (let i = 0; i < 16; i++) expect(subjects).toContain(`"Big ${i}"`);
    // Without the budget the burst alone took about 1.5 GB and kept it.
    expect(peak - baseline).toBeLessThan(700);
    expect(after - baseline).toBeLessThan(250);
  }, 600_000);
});

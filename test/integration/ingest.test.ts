// `ticketd ingest` as an MTA runs it: the real CLI process, a message on
// stdin, the verdict in the exit code (sysexits), and the acknowledgement sent
// by the running daemon through a real SMTP server.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;

async function ingest(input: string | Buffer, ...args: string[]) {
  return env.cli(['ingest', '--mailbox', 'support', '--json', ...args], { input });
}

async function ingestOne(input: string | Buffer) {
  const r = await ingest(input);
  expect(r.code, r.stderr).toBe(0);
  const results = JSON.parse(r.stdout) as any[];
  expect(results).toHaveLength(1);
  return { ...results[0], stderr: r.stderr };
}

async function quarantined(): Promise<any[]> {
  const r = await env.cli(['quarantine', 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

function refIn(m: CapturedMessage): string {
  return /\[(ACME-[0-9A-Z]{6})\]/.exec(m.parsed.subject ?? '')?.[1] ?? '';
}

describe('ticketd ingest exit codes', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('exits 0 with a new ticket, and 0 again for the same message delivered twice', async () => {
    const mail = customerMail({ subject: 'Piped printer', messageId: 'pipe1@customer.example' });
    // As local(8) delivers to a command: with an mbox envelope line in front.
    const first = await ingestOne(`From jane@customer.example  Tue Jul  1 09:00:00 2025\n${mail}`);
    expect(first).toMatchObject({ source: 'stdin', outcome: 'taken', ackQueued: true, quarantineId: null });
    expect(first.ref).toMatch(/^ACME-[0-9A-Z]{6}$/);
    expect(first.stderr).toContain(`stdin: taken ${first.ref} (acknowledgement queued)`);

    const again = await ingestOne(mail);
    expect(again).toMatchObject({ outcome: 'duplicate', reason: 'message-id-already-taken', ref: null });
    const tickets = await env.listTickets();
    expect(tickets).toHaveLength(1);
    expect(tickets[0]).toMatchObject({
      ref: first.ref,
      subject: 'Piped printer',
      requester: 'jane@customer.example',
      messageCount: 2,
    });
  });

  it('exits 0 for messages it quarantines: empty input and one over the size limit', async () => {
    env.writeConfig((c) => (c.limits = { maxMessageBytes: 20_000 }));
    try {
      const empty = await ingestOne('');
      expect(empty.outcome).toBe('quarantined');
      expect(empty.reason).toMatch(/^parse-failed/);

      const big = await ingestOne(
        customerMail({ subject: 'Huge piped', messageId: 'huge@customer.example', body: 'y'.repeat(40_000) }),
      );
      expect(big.outcome).toBe('quarantined');
      expect(big.reason).toMatch(/^too-large: \d+ bytes > 20000$/);
      expect(big.stderr).toContain(`quarantined as #${big.quarantineId}`);

      const entries = await quarantined();
      expect(entries.map((e) => [e.id, e.reason.split(':')[0], e.origin])).toEqual([
        [empty.quarantineId, 'parse-failed', { via: 'pipe', mailbox: 'support' }],
        [big.quarantineId, 'too-large', { via: 'pipe', mailbox: 'support' }],
      ]);
      // The whole message is kept, so a retry after raising the limit has all of it.
      expect(entries[1].size).toBeGreaterThan(40_000);
      expect((await env.listTickets()).map((t) => t.subject)).not.toContain('Huge piped');
    } finally {
      env.writeConfig();
    }
  });

  it('exits 0 for garbage too: whatever the pipeline makes of it is in the database', async () => {
    const r = await ingest(Buffer.from('Frm broken\nX-Garbage;;;: ???\n\n\u0000\u0001 junk\n'));
    expect(r.code, r.stderr).toBe(0);
    expect(['taken', 'quarantined', 'ignored']).toContain(JSON.parse(r.stdout)[0].outcome);
  });

  it('exits 64 for an unknown mailbox or a missing --mailbox, and takes nothing', async () => {
    const before = (await env.listTickets()).length;
    const mail = customerMail({ subject: 'Wrong mailbox', messageId: 'wrong@customer.example' });
    const unknown = await env.cli(['ingest', '--mailbox', 'sales'], { input: mail });
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('no mailbox named "sales" (configured: support)');
    const missing = await env.cli(['ingest'], { input: mail });
    expect(missing.code).toBe(64);
    expect(missing.stderr).toContain("required option '--mailbox <name>'");
    const unreadable = await env.cli(['ingest', '--mailbox', 'support', join(env.dir, 'no-such.eml')]);
    expect(unreadable.code).toBe(64);
    expect(unreadable.stderr).toContain('ENOENT');
    expect(await env.listTickets()).toHaveLength(before);
  });

  it('exits 75 while another process holds the database locked; the MTA retry then takes the message once', async () => {
    const mail = customerMail({ subject: 'During a lock', messageId: 'locked@customer.example', from: 'lock@customer.example' });
    const db = new BetterSqlite3(join(env.dir, 'data', 'ticketd.sqlite'));
    try {
      db.exec('BEGIN EXCLUSIVE');
      const r = await env.cli(['ingest', '--mailbox', 'support'], { input: mail });
      expect(r.code, r.stderr).toBe(75);
      expect(r.stderr).toMatch(/temporary failure, try again later: SQLITE_BUSY/);
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    expect((await env.listTickets()).filter((t) => t.subject === 'During a lock')).toHaveLength(0);

    const retried = await ingestOne(mail);
    expect(retried.outcome).toBe('taken');
    expect((await env.listTickets()).filter((t) => t.subject === 'During a lock')).toHaveLength(1);
  }, 30_000);

  it('exits 75 when the configuration cannot be used at delivery time', async () => {
    writeFileSync(env.configPath, '{ "database": ');
    try {
      const r = await env.cli(['ingest', '--mailbox', 'support'], {
        input: customerMail({ subject: 'Bad config', messageId: 'cfg@customer.example' }),
      });
      expect(r.code).toBe(75);
      expect(r.stderr).toContain('TICKETD_CONFIG_INVALID');
    } finally {
      env.writeConfig();
    }
    expect((await env.listTickets()).map((t) => t.subject)).not.toContain('Bad config');
  });

  it('takes several files in one call, one result each', async () => {
    const a = join(env.dir, 'a.eml');
    const b = join(env.dir, 'b.eml');
    writeFileSync(a, customerMail({ subject: 'File A', messageId: 'fa@customer.example', from: 'fa@customer.example' }));
    writeFileSync(b, customerMail({ subject: 'File B', messageId: 'fb@customer.example', from: 'fb@customer.example' }));
    const r = await env.cli(['ingest', '--mailbox', 'support', '--json', a, b]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as any[]).map((x) => [x.source, x.outcome])).toEqual([
      [a, 'taken'],
      [b, 'taken'],
    ]);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ticketd ingest:'))).toHaveLength(2);
  });
});

describe('ticketd ingest next to IMAP and the running daemon', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.stop();
  });

  it('threads a piped reply into the ticket IMAP opened, and the daemon sends the acknowledgement of a piped message', async () => {
    const daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({ subject: 'Router down', messageId: 'imap1@customer.example' }),
      );
      const [ack] = await env.smtp.waitFor(1, 20_000);
      const ref = refIn(ack!);
      expect(ref).not.toBe('');
      const ackId = ack!.parsed.messageId!.replace(/[<>]/g, '');

      const reply = await ingestOne(
        customerMail({
          subject: `Re: [${ref}] Router down`,
          messageId: 'pipe-reply@customer.example',
          inReplyTo: ackId,
          references: ['imap1@customer.example', ackId],
          body: 'It is still down.',
        }),
      );
      expect(reply).toMatchObject({ outcome: 'threaded', ref, ackQueued: false });
      const shown = await env.cli(['tickets', 'show', ref, '--json']);
      const detail = JSON.parse(shown.stdout);
      expect(detail.messages.filter((m: any) => m.direction === 'in').map((m: any) => m.messageId)).toEqual([
        'imap1@customer.example',
        'pipe-reply@customer.example',
      ]);
      expect(await env.listTickets()).toHaveLength(1);

      const fresh = await ingestOne(
        customerMail({
          subject: 'Piped while running',
          messageId: 'pipe2@customer.example',
          from: 'Piet <piet@customer.example>',
        }),
      );
      expect(fresh).toMatchObject({ outcome: 'taken', ackQueued: true });
      const acks = await env.smtp.waitFor(2, 20_000);
      const pipedAck = acks[1]!;
      expect(pipedAck.envelope.to).toEqual(['piet@customer.example']);
      expect(refIn(pipedAck)).toBe(fresh.ref);
      expect(pipedAck.parsed.inReplyTo).toBe('<pipe2@customer.example>');
      await new Promise((r) => setTimeout(r, 1000));
      expect(env.smtp.messages).toHaveLength(2);
    } finally {
      daemon.child.kill('SIGTERM');
      expect((await daemon.exited).code).toBe(0);
    }
  }, 60_000);
});

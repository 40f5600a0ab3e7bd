// The running daemon against real Dovecot and Cyrus: doctor telling a
// mailbox nobody reads from a quiet one, one message sent to two watched
// mailboxes, and restarts of ticketd and of Cyrus.

import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCyrus } from '../harness/cyrus.js';
import { customerMail, startTicketdEnv, SUPPORT, type DaemonProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const TEST = { timeout: 120_000 };
const SALES = 'sales@example.com';
let env: TicketdEnv;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function stopDaemon(daemon: DaemonProcess): Promise<void> {
  daemon.child.kill('SIGCONT');
  daemon.child.kill('SIGTERM');
  expect(await daemon.exited).toEqual({ code: 0, signal: null });
}

function dbCount(sql: string): number {
  const db = new BetterSqlite3(join(env.dir, 'data', 'ticketd.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const imapLine = (stdout: string, mailbox: string) => stdout.split('\n').find((l) => l.includes(`imap ${mailbox}:`)) ?? '';

describe('doctor and a mailbox that is not being read', () => {
  it('says when the running ticketd last read the mailbox, and FAILED once it stops reading', TEST, async () => {
    // a read is due every poll interval; doctor allows one operation timeout on top
    env.writeConfig((c) => {
      c.mailboxes[0].imap.pollIntervalMs = 500;
      c.mailboxes[0].imap.operationTimeoutMs = 10_000;
    });
    const daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({ subject: 'Read me', messageId: 'doctor1@customer.example' }),
      );
      await env.smtp.waitFor(1, 30_000);

      const reading = await env.cli(['doctor']);
      expect(imapLine(reading.stdout, 'support')).toMatch(/^OK {6}imap support: .*, read by ticketd \d+ m?s ago$/);
      expect(reading.code, reading.stdout).toBe(0);

      // a hung daemon: connected, alive, reading nothing
      daemon.child.kill('SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 13_000));
      const stalled = await env.cli(['doctor']);
      expect(imapLine(stalled.stdout, 'support')).toMatch(
        /^FAILED {2}imap support: .*, but ticketd has not read it for \d+ s \(poll interval 500 ms\); see IMAP_DISCONNECTED in its log$/,
      );
      expect(stalled.code).toBe(1);
    } finally {
      await stopDaemon(daemon);
    }
    // stopped cleanly: not reading is expected, and not reported
    const stopped = await env.cli(['doctor']);
    expect(imapLine(stopped.stdout, 'support')).toMatch(/^OK {6}imap support: .*message\(s\) in the folder$/);
  });
});

describe('one message to two watched mailboxes', () => {
  it('is one ticket with one acknowledgement', TEST, async () => {
    env.smtp.clear();
    env.writeConfig((c) => {
      const sales = structuredClone(c.mailboxes[0]);
      sales.name = 'sales';
      sales.address = SALES;
      sales.referencePrefix = 'SALES';
      sales.imap.auth.user = SALES;
      c.mailboxes.push(sales);
    });
    const raw = customerMail({ subject: 'Quote and support', messageId: 'both-mailboxes@customer.example', cc: SALES });
    await env.dovecot.appendMessage(SUPPORT, 'INBOX', raw);
    await env.dovecot.appendMessage(SALES, 'INBOX', raw);
    const before = dbCount('SELECT count(*) AS n FROM outbox');

    const daemon = env.spawnDaemon();
    try {
      const taken = (mailbox: string) =>
        daemon.waitForLog((e) => e.code === 'MSG_TAKEN' && e.mailbox === mailbox && e.reason !== 'uid-already-taken', 30_000);
      const outcomes = await Promise.all([taken('support'), taken('sales')]);
      expect(outcomes.map((o) => o.action).sort()).toEqual(['duplicate', 'taken']);
      expect(outcomes.find((o) => o.action === 'duplicate')).toMatchObject({
        reason: 'message-id-taken-in-another-mailbox',
        ack: false,
      });
      await env.smtp.waitFor(1, 30_000);
    } finally {
      await stopDaemon(daemon);
    }
    expect(dbCount("SELECT count(*) AS n FROM tickets WHERE subject = 'Quote and support'")).toBe(1);
    expect(dbCount('SELECT count(*) AS n FROM outbox') - before).toBe(1);
    expect(env.smtp.messages).toHaveLength(1);
    // both copies left the INBOXes
    expect(await env.dovecot.listFolder(SUPPORT, 'INBOX')).toEqual([]);
    expect(await env.dovecot.listFolder(SALES, 'INBOX')).toEqual([]);
  });
});

describe('ticketd against Cyrus IMAP', () => {
  it('goes on taking mail after ticketd restarts and after Cyrus restarts', { timeout: 180_000 }, async () => {
    const cyrus = await startCyrus({ users: [{ user: SUPPORT, pass: 'secret' }] });
    try {
      env.smtp.clear();
      env.writeConfig((c) => {
        Object.assign(c.mailboxes[0].imap, {
          host: cyrus.host,
          port: cyrus.port,
          pollIntervalMs: 1_000,
          operationTimeoutMs: 10_000,
        });
      });
      const mail = (n: number) =>
        customerMail({ subject: `Cyrus ${n}`, messageId: `cyrus${n}@customer.example`, from: `C${n} <c${n}@customer.example>` });

      const first = env.spawnDaemon();
      try {
        await cyrus.appendMessage(SUPPORT, 'INBOX', mail(1));
        await env.smtp.waitFor(1, 30_000);
      } finally {
        await stopDaemon(first);
      }

      // a new session finds Processed there already, and Cyrus refuses CREATE with a plain NO
      const second = env.spawnDaemon();
      try {
        await cyrus.appendMessage(SUPPORT, 'INBOX', mail(2));
        await env.smtp.waitFor(2, 30_000);
        await cyrus.restart(() => second.waitForLog((e) => e.code === 'IMAP_DISCONNECTED', 30_000).then(() => undefined));
        await cyrus.appendMessage(SUPPORT, 'INBOX', mail(3));
        await env.smtp.waitFor(3, 30_000);
        await second.waitForLog(
          (e) => e.code === 'IMAP_CONNECTED' && second.lines.filter((l) => l.includes('"IMAP_CONNECTED"')).length === 2,
        );
        const doctor = await env.cli(['doctor']);
        expect(imapLine(doctor.stdout, 'support')).toMatch(/^OK {6}imap support: .*, read by ticketd \d+ m?s ago$/);
      } finally {
        await stopDaemon(second);
      }
      expect(await cyrus.listFolder(SUPPORT, 'INBOX')).toEqual([]);
      expect((await cyrus.listFolder(SUPPORT, 'INBOX.Processed')).map((m) => m.messageId)).toEqual([
        '<cyrus1@customer.example>',
        '<cyrus2@customer.example>',
        '<cyrus3@customer.example>',
      ]);
      const subjects = env.smtp.messages.map((m) => m.parsed.subject ?? '');
      expect(subjects).toHaveLength(3);
      for (const n of [1, 2, 3]) expect(subjects.filter((x) => x.includes(`Cyrus ${n}`))).toHaveLength(1);
    } finally {
      await cyrus.stop();
      env.writeConfig();
    }
  });
});

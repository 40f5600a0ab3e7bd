// SLA mail that stops being true before it is sent: a delay notice and a
// staff warning queued while the SMTP server refuses mail, then the ticket
// answered, are withdrawn at the next attempt and never reach anyone. And
// `sla tick --now` in the future only reports unless told to send. On both
// engines: the withdrawal's rules are written once over the store's seam.

import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import { toPostgresSql } from '../../src/store/postgres-sql.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, startTicketdEnv, SUPPORT, type TestDatabase, type TicketdEnv } from '../harness/ticketd-env.js';

const TEAM = 'team@example.com';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function refIn(m: CapturedMessage): string {
  return /\[(ACME-[0-9A-Z]{6})\]/.exec(m.parsed.subject ?? '')?.[1] ?? '';
}

describe.each<TestDatabase>(['sqlite', 'postgres'])('on %s', (database) => {
  let env: TicketdEnv;

  /** Rows of one SQL statement (`?` parameters), read beside the running installation. */
  async function query<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    if (database === 'postgres') {
      const client = new pg.Client({ connectionString: env.database });
      await client.connect();
      try {
        return (await client.query(toPostgresSql(sql).text, params)).rows as T[];
      } finally {
        await client.end();
      }
    }
    const db = new BetterSqlite3(join(env.dir, 'data', 'ticketd.sqlite'), { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  }

  beforeAll(async () => {
    env = await startTicketdEnv({ database });
    env.writeConfig((cfg) => {
      cfg.outbox = { retrySchedule: Array.from({ length: 40 }, () => '1s'), pollIntervalMs: 200 };
      cfg.sla = {
        policies: [
          {
            name: 'fast',
            match: { mailbox: 'support' },
            firstResponse: '3s',
            resolution: '1h',
            calendar: '24x7',
            customerNotices: [{ at: '100%' }],
            staffWarnings: ['100%'],
            staffAddress: TEAM,
          },
        ],
      };
    });
  }, 60_000);

  afterAll(async () => {
    await env?.stop();
  }, 30_000);

  describe('sla tick at another instant', () => {
    it('is a dry run unless --send is given', async () => {
      const td = await env.open();
      try {
        await env.dovecot.appendMessage(
          SUPPORT,
          'INBOX',
          customerMail({ subject: 'Dry run please', messageId: 'dry@customer.example' }),
        );
        await td.cycle();
      } finally {
        await td.close();
      }
      const mails = () =>
        query<{ kind: string }>(
          "SELECT kind FROM messages WHERE direction = 'out' AND kind IN ('delay-notice', 'staff-warning')",
        );
      const records = () => query<{ outcome: string }>('SELECT outcome FROM sla_notices');
      const future = new Date(Date.now() + 86_400_000).toISOString();

      const dry = await env.cli(['sla', 'tick', '--now', future]);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stderr).toContain('is not the present; nothing is recorded or queued (add --send to queue these mails)');
      expect(dry.stdout).toMatch(/^dry run at .*: 1 ticket\(s\) due, \d+ mail\(s\) would be queued$/m);
      expect(dry.stdout).toMatch(/^ {2}would {4}ACME-\w{6} {2}delay-notice/m);
      expect(await mails()).toEqual([]);
      expect(await records()).toEqual([]);

      const json = JSON.parse((await env.cli(['sla', 'tick', '--now', future, '--json'])).stdout);
      expect(json.dryRun).toBe(true);
      const wouldQueue = [...new Set(json.queued.map((q: { kind: string }) => q.kind))].sort();
      expect(wouldQueue).toEqual(['delay-notice', 'staff-warning']);
      expect(await mails()).toEqual([]);

      const both = await env.cli(['sla', 'tick', '--now', future, '--send', '--dry-run']);
      expect(both.code).toBe(64);

      const sent = await env.cli(['sla', 'tick', '--now', future, '--send']);
      expect(sent.code, sent.stderr).toBe(0);
      expect(sent.stdout).toMatch(/^at .*: 1 ticket\(s\) due, \d+ mail\(s\) queued$/m);
      expect([...new Set((await mails()).map((m) => m.kind))].sort()).toEqual(wouldQueue);
    }, 60_000);
  });

  describe('SLA mail withdrawn before sending', () => {
    let daemon: Daemon;
    const logs: Record<string, any>[] = [];

    beforeAll(async () => {
      const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
      daemon = await startDaemon({ configPath: env.configPath, logger, clock: systemClock, stopDeadlineMs: 2_000 });
    }, 60_000);

    afterAll(async () => {
      await daemon?.stop();
    }, 30_000);

    it('withdraws a notice and a warning queued while SMTP refused, once the ticket is answered', async () => {
      const logged = (code: string, ref?: string) => logs.filter((l) => l.code === code && (ref === undefined || l.ref === ref));
      // The server refuses every recipient: everything queued stays in the outbox, retrying.
      env.smtp.setFailureMode({ code: 451, at: 'rcpt' });
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({ from: 'Bob <bob@customer.example>', subject: 'Outage victim', messageId: 'outage@customer.example' }),
      );
      await until(
        () => logged('SLA_NOTICE_QUEUED').length > 0 && logged('SLA_WARNING_QUEUED').length > 0,
        'the notice and the warning',
      );
      const ref = logged('SLA_NOTICE_QUEUED')[0]!.ref as string;
      expect(logged('SLA_WARNING_QUEUED', ref)).toHaveLength(1);
      await until(
        () => logs.some((l) => l.code === 'OUTBOX_RETRY' && l.kind === 'delay-notice'),
        'a refused attempt of the notice',
      );

      const reply = await env.cli(['tickets', 'reply', ref, '-m', 'Here is your answer.']);
      expect(reply.code, reply.stderr).toBe(0);

      // The server accepts again: the acknowledgement and the answer go out, the apology does not.
      env.smtp.setFailureMode(null);
      await until(
        () => logged('SLA_NOTICE_WITHDRAWN', ref).length === 1 && logged('SLA_WARNING_WITHDRAWN', ref).length === 1,
        'both withdrawals',
      );
      const pendingOf = (r: string) =>
        query(
          `SELECT o.id FROM outbox o JOIN messages m ON m.id = o.message_row JOIN tickets t ON t.id = m.ticket_id
               WHERE t.ref = ? AND o.status = 'pending'`,
          r,
        );
      await until(async () => (await pendingOf(ref)).length === 0, 'nothing of the ticket left in the outbox');
      const toTicket = env.smtp.messages.filter((m) => refIn(m) === ref);
      expect(toTicket.map((m) => m.parsed.subject).sort()).toEqual([
        `[${ref}] Re: Outage victim`,
        `[${ref}] We received your request: Outage victim`,
      ]);
      expect(env.smtp.messages.filter((m) => m.envelope.to.includes(TEAM) && refIn(m) === ref)).toEqual([]);

      expect(logged('SLA_NOTICE_WITHDRAWN', ref)[0]).toMatchObject({
        target: 'first-response',
        threshold: '1',
        reason: 'the ticket was answered',
      });
      expect(
        await query<{ kind: string; status: string; lastError: string }>(
          `SELECT m.kind, o.status, o.last_error AS lastError FROM outbox o JOIN messages m ON m.id = o.message_row
           JOIN tickets t ON t.id = m.ticket_id WHERE t.ref = ? AND m.kind IN ('delay-notice', 'staff-warning') ORDER BY m.kind`,
          ref,
        ),
      ).toEqual([
        { kind: 'delay-notice', status: 'withdrawn', lastError: 'the ticket was answered' },
        { kind: 'staff-warning', status: 'withdrawn', lastError: 'the ticket was answered' },
      ]);
      expect(
        await query<{ kind: string; outcome: string }>(
          'SELECT n.kind, n.outcome FROM sla_notices n JOIN tickets t ON t.id = n.ticket_id WHERE t.ref = ? AND n.kind != ? ORDER BY n.kind',
          ref,
          'breach',
        ),
      ).toEqual([
        { kind: 'notice', outcome: 'withdrawn' },
        { kind: 'warning', outcome: 'withdrawn' },
      ]);

      const show = await env.cli(['tickets', 'show', ref]);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout).toMatch(/notice-withdrawn +internal +target=first-response threshold=1 reason=the ticket was answered/);
      expect(show.stdout).toMatch(
        /warning-withdrawn +internal +target=first-response threshold=100% reason=the ticket was answered/,
      );
      const status = JSON.parse((await env.cli(['sla', 'status', ref, '--json'])).stdout);
      expect(status.noticesSent).toBe(0);
    }, 90_000);
  });
});

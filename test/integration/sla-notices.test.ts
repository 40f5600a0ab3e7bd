// The delay apology against real servers: mail into Dovecot, the real daemon
// (IMAP worker, SLA scheduler, outbox) on the system clock, and the
// capturing SMTP server. Targets are seconds long on a round-the-clock
// calendar, so the scheduler's own timers drive the test; business-hours
// arithmetic is covered by the unit tests.

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { startDaemon, type Daemon } from '../../src/daemon/daemon.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

const TEAM = 'team@example.com';
let env: TicketdEnv;
let daemon: Daemon;
const logs: Record<string, any>[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function header(m: CapturedMessage, name: string): string {
  const v = m.parsed.headers.get(name);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function refIn(m: CapturedMessage): string {
  return /\[(ACME-[0-9A-Z]{6})\]/.exec(m.parsed.subject ?? '')?.[1] ?? '';
}

const isNotice = (m: CapturedMessage) => (m.parsed.subject ?? '').includes('Sorry for the wait');
const isWarning = (m: CapturedMessage) => (m.parsed.subject ?? '').includes('SLA warning');
const isAck = (m: CapturedMessage) => header(m, 'auto-submitted') === 'auto-replied';

/** Waits until `pred` holds for the captured mail (the daemon sends on its own schedule). */
async function until(pred: (all: readonly CapturedMessage[]) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred(env.smtp.messages)) {
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}; captured: ${env.smtp.messages.map((m) => `${m.envelope.to} ${m.parsed.subject}`).join(' | ')}`,
      );
    }
    await sleep(50);
  }
}

async function cliJson(args: string[]): Promise<any> {
  const r = await env.cli(args);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('SLA delay notices end to end', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
    env.writeConfig((cfg) => {
      cfg.sla = {
        policies: [
          {
            name: 'fast',
            match: { mailbox: 'support' },
            firstResponse: '4s',
            resolution: '1h',
            calendar: '24x7',
            customerNotices: [{ at: '100%', repeatEvery: '8s', max: 2 }],
            staffWarnings: ['50%', '100%'],
            staffAddress: TEAM,
          },
        ],
      };
    });
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    daemon = await startDaemon({ configPath: env.configPath, logger, clock: systemClock, stopDeadlineMs: 2_000 });
  }, 60_000);

  afterAll(async () => {
    await daemon?.stop();
    await env?.stop();
  }, 30_000);

  it('apologises once per threshold while a ticket waits, and not after the agent replied', async () => {
    const started = Date.now();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Left waiting', messageId: 'wait@customer.example' }),
    );
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ from: 'Bob <bob@customer.example>', subject: 'Answered later', messageId: 'answered@customer.example' }),
    );
    await until((all) => all.filter(isAck).length === 2, 'two acknowledgements');
    const acks = env.smtp.messages.filter(isAck);
    const waiting = refIn(acks.find((m) => m.envelope.to[0] === 'jane@customer.example')!);
    const answered = refIn(acks.find((m) => m.envelope.to[0] === 'bob@customer.example')!);
    expect(waiting).not.toBe('');
    expect(answered).not.toBe('');

    // What a pass would do once both are overdue, without doing it.
    const dry = await cliJson(['sla', 'tick', '--now', new Date(started + 8_000).toISOString(), '--dry-run', '--json']);
    expect(dry.dryRun).toBe(true);
    expect(
      dry.queued
        .filter((q: any) => q.kind === 'delay-notice')
        .map((q: any) => q.ref)
        .sort(),
    ).toEqual([waiting, answered].sort());

    // First notice of each ticket at 4 seconds; then the agent answers one of them.
    await until((all) => all.filter(isNotice).length === 2, 'the first delay notices');
    const reply = await env.cli(['tickets', 'reply', answered, '-m', 'Sorry, here is your answer.']);
    expect(reply.code, reply.stderr).toBe(0);

    // The second notice (4s + 8s) goes only to the ticket still waiting.
    await until((all) => all.filter(isNotice).length === 3, 'the second delay notice');
    await sleep(Math.max(0, started + 16_000 - Date.now()));

    const notices = env.smtp.messages.filter(isNotice);
    expect(notices.map(refIn).sort()).toEqual([answered, waiting, waiting].sort());
    expect(notices.filter((m) => refIn(m) === waiting).map((m) => m.envelope.to)).toEqual([
      ['jane@customer.example'],
      ['jane@customer.example'],
    ]);

    // Each notice: automatic, threaded, reference in the subject, status link.
    const ackOf = (ref: string) => acks.find((m) => refIn(m) === ref)!;
    const first = notices.find((m) => refIn(m) === waiting)!;
    expect(header(first, 'auto-submitted')).toBe('auto-generated');
    expect(first.parsed.subject).toBe(`[${waiting}] Sorry for the wait: Left waiting`);
    expect(first.parsed.inReplyTo).toBe(ackOf(waiting).parsed.messageId);
    expect(String(first.parsed.references)).toContain('<wait@customer.example>');
    expect(first.parsed.text).toMatch(/http:\/\/127\.0\.0\.1:8080\/t\/[A-Za-z0-9_-]{43}/);
    expect(first.envelope.from).toBe(SUPPORT);

    // Staff: 50% and 100% once per ticket and target, to the team address.
    const warnings = env.smtp.messages.filter(isWarning);
    expect(warnings.every((m) => m.envelope.to.join() === TEAM)).toBe(true);
    expect(warnings.map((m) => `${refIn(m)} ${/(\d+%) of first-response/.exec(m.parsed.subject ?? '')?.[1]}`).sort()).toEqual(
      [`${answered} 50%`, `${answered} 100%`, `${waiting} 50%`, `${waiting} 100%`].sort(),
    );

    // A pass from the CLI afterwards finds nothing left to send.
    const after = await cliJson(['sla', 'tick', '--json']);
    expect(after.queued).toEqual([]);

    const waitingStatus = await cliJson(['sla', 'status', waiting, '--json']);
    expect(waitingStatus).toMatchObject({ ref: waiting, policy: 'fast', breached: ['first-response'], noticesSent: 2 });
    expect(waitingStatus.resolutionDue).toEqual(expect.any(String));
    const all = await cliJson(['sla', 'status', '--json']);
    expect(all.map((s: any) => s.ref).sort()).toEqual([answered, waiting].sort());
    const badNow = await env.cli(['sla', 'tick', '--now', 'yesterday']);
    expect(badNow.code).toBe(64);
    expect(badNow.stderr).toContain('--now: not an ISO time');
    const answeredStatus = await cliJson(['sla', 'status', answered, '--json']);
    expect(answeredStatus).toMatchObject({ ref: answered, firstResponseDue: null, breached: ['first-response'], noticesSent: 1 });
    expect(answeredStatus.targets['first-response'].metAt).toEqual(expect.any(String));

    const codes = logs.map((l) => l.code);
    expect(codes.filter((c) => c === 'SLA_NOTICE_QUEUED')).toHaveLength(3);
    expect(codes.filter((c) => c === 'SLA_WARNING_QUEUED')).toHaveLength(4);
    expect(codes.filter((c) => c === 'SLA_BREACHED')).toHaveLength(2);
    expect(codes).toContain('SLA_TICK');
  }, 60_000);
});

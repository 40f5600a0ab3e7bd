// A stop gives the sends in hand a deadline; one that outlasts it leaves its
// row queued, and if the server did accept that mail it is sent again after
// the next start. The operator is told, rather than left to find duplicates.

import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { startDaemon } from '../../src/daemon/daemon.js';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);

afterAll(async () => {
  await env?.stop();
});

describe('a stop whose sends outlast the deadline', () => {
  it('logs OUTBOX_STOP_TIMEOUT and leaves the mail queued for the next start', async () => {
    env.smtp.setStallData(true);
    const logs: Record<string, any>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
    const daemon = await startDaemon({ configPath: env.configPath, logger, clock: systemClock, stopDeadlineMs: 300 });
    try {
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({ subject: 'Slow server', messageId: 'slow@customer.example', from: 'slow@customer.example' }),
      );
      for (let tries = 0; env.smtp.stalled === 0 && tries < 300; tries++) await new Promise((r) => setTimeout(r, 100));
      expect(env.smtp.stalled).toBe(1);
    } finally {
      await daemon.stop();
    }
    expect(logs.filter((l) => l.code === 'OUTBOX_STOP_TIMEOUT')).toEqual([
      expect.objectContaining({ level: 40, deadlineMs: 300 }),
    ]);
    expect(logs.some((l) => l.code === 'DAEMON_STOPPED')).toBe(true);
    env.smtp.setStallData(false);
    const outbox = await env.cli(['outbox', 'list', '--json']);
    expect(outbox.code, outbox.stderr).toBe(0);
    expect(JSON.parse(outbox.stdout)).toEqual([expect.objectContaining({ status: 'pending' })]);
  }, 60_000);
});

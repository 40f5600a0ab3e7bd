// /metrics on the status page's server after real intake: in-process with
// fastify inject, and from the running daemon over HTTP (where doctor then
// recognises its own port as taken by ticketd).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkReadiness } from '../../src/web/readiness.js';
import { createMetrics, recordIntake, registerMetricsRoute } from '../../src/web/metrics.js';
import { buildWebServer } from '../../src/web/server.js';
import { freePort } from '../harness/free-port.js';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

/** The value of one series (`name{labels}`) in the exposition, undefined when absent. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const small = (c: Record<string, any>) => (c.limits = { maxMessageBytes: 4000 });
const tooLarge = (n: number) =>
  customerMail({
    subject: `Huge ${n}`,
    messageId: `huge${n}@customer.example`,
    body: 'x'.repeat(6000),
    from: `Big <big${n}@customer.example>`,
  });

describe('/metrics', () => {
  it('counts what the pipeline took, served by the status page server', async () => {
    env.writeConfig(small);
    const td = await env.open();
    const { runtime } = td;
    const metrics = createMetrics({
      outboxCounts: () => runtime.store.outboxCounts(),
      lastPolls: () => [['support', td.imap.health().lastPollAt]],
    });
    runtime.pipeline.onResult = (r) => recordIntake(metrics, r);
    const statusStore = runtime.statusPages;
    const app = buildWebServer({
      site: runtime,
      readiness: () =>
        checkReadiness({ statusStore, outboxCounts: () => runtime.store.outboxCounts(), mailboxes: [], clock: td.clock }),
    });
    registerMetricsRoute(app, metrics);
    try {
      for (const n of [1, 2]) {
        await env.dovecot.appendMessage(
          SUPPORT,
          'INBOX',
          customerMail({ subject: `Question ${n}`, messageId: `q${n}@customer.example`, from: `C <c${n}@customer.example>` }),
        );
      }
      await env.dovecot.appendMessage(SUPPORT, 'INBOX', tooLarge(1));
      await td.imap.runOnce();

      let res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(value(res.body, 'ticketd_messages_taken_total{mailbox="support",action="taken"}')).toBe(2);
      expect(value(res.body, 'ticketd_messages_taken_total{mailbox="support",action="quarantined"}')).toBe(1);
      expect(value(res.body, 'ticketd_messages_quarantined_total{mailbox="support"}')).toBe(1);
      expect(value(res.body, 'ticketd_outbox_pending')).toBe(2);
      expect(value(res.body, 'ticketd_outbox_failed')).toBe(0);
      expect(value(res.body, 'ticketd_last_poll_timestamp_seconds{mailbox="support"}')).toBe(td.clock.now().getTime() / 1000);
      expect(res.body).toMatch(/^process_resident_memory_bytes \d+/m);

      await td.outbox.runOnce();
      await env.smtp.waitFor(2);
      res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(value(res.body, 'ticketd_outbox_pending')).toBe(0);
    } finally {
      await app.close();
      await td.close();
      env.smtp.clear();
    }
  });

  it('is served by the running daemon, and doctor knows the port is ticketd', { timeout: 90_000 }, async () => {
    const port = await freePort();
    env.writeConfig((c) => {
      small(c);
      c.http = { enabled: true, host: '127.0.0.1', port };
    });
    const daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({ subject: 'Live', messageId: 'live1@customer.example', from: 'L <l1@customer.example>' }),
      );
      await env.dovecot.appendMessage(SUPPORT, 'INBOX', tooLarge(2));
      await env.smtp.waitFor(1);
      await daemon.waitForLog((e) => e.code === 'MSG_QUARANTINED');

      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      // Counters start at zero with each process: this one took one and quarantined one.
      expect(value(text, 'ticketd_messages_taken_total{mailbox="support",action="taken"}')).toBe(1);
      expect(value(text, 'ticketd_messages_quarantined_total{mailbox="support"}')).toBe(1);
      const polled = value(text, 'ticketd_last_poll_timestamp_seconds{mailbox="support"}');
      expect(polled).toBeGreaterThan(Date.now() / 1000 - 60);

      const doctor = await env.cli(['doctor']);
      expect(doctor.stdout).toContain(`OK      http: 127.0.0.1:${port} is in use by a running ticketd (it answers /metrics)`);
      expect(doctor.code, doctor.stdout).toBe(0);
    } finally {
      daemon.child.kill('SIGTERM');
    }
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
  });
});

import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import type { IntakeOutcome, IntakeResult, OutboxCounts } from '../../src/store/store.js';
import { createMetrics, recordIntake, recordSlaBreach, registerMetricsRoute } from '../../src/web/metrics.js';

function result(mailbox: string, outcome: IntakeOutcome): IntakeResult {
  return {
    origin: { via: 'imap', mailbox, uidValidity: 1, uid: 1 },
    outcome,
    reason: 'test',
    ref: null,
    ackQueued: false,
    quarantineId: outcome === 'quarantined' ? 1 : null,
  };
}

function setup() {
  const counts: OutboxCounts = { pending: 3, failed: 1, sent: 9 };
  const polls = new Map<string, number | null>([
    ['support', Date.UTC(2025, 2, 3, 9, 41, 0, 500)],
    ['sales', null],
  ]);
  const metrics = createMetrics({ outboxCounts: async () => ({ ...counts }), lastPolls: () => polls });
  return { metrics, counts, polls };
}

/** The sample lines of one metric, labels and value, without HELP and TYPE. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('metrics', () => {
  it('counts intake results per mailbox and action, quarantines on their own', async () => {
    const { metrics } = setup();
    recordIntake(metrics, result('support', 'taken'));
    recordIntake(metrics, result('support', 'taken'));
    recordIntake(metrics, result('support', 'threaded'));
    recordIntake(metrics, result('sales', 'quarantined'));
    const text = await metrics.registry.metrics();
    expect(samples(text, 'ticketd_messages_taken_total').sort()).toEqual([
      'ticketd_messages_taken_total{mailbox="sales",action="quarantined"} 1',
      'ticketd_messages_taken_total{mailbox="support",action="taken"} 2',
      'ticketd_messages_taken_total{mailbox="support",action="threaded"} 1',
    ]);
    expect(samples(text, 'ticketd_messages_quarantined_total')).toEqual([
      'ticketd_messages_quarantined_total{mailbox="sales"} 1',
    ]);
    expect(text).toContain('# TYPE ticketd_messages_taken_total counter');
  });

  it('reads the outbox gauges from the store at each scrape', async () => {
    const { metrics, counts } = setup();
    let text = await metrics.registry.metrics();
    expect(samples(text, 'ticketd_outbox_pending')).toEqual(['ticketd_outbox_pending 3']);
    expect(samples(text, 'ticketd_outbox_failed')).toEqual(['ticketd_outbox_failed 1']);
    counts.pending = 0;
    counts.failed = 4;
    text = await metrics.registry.metrics();
    expect(samples(text, 'ticketd_outbox_pending')).toEqual(['ticketd_outbox_pending 0']);
    expect(samples(text, 'ticketd_outbox_failed')).toEqual(['ticketd_outbox_failed 4']);
  });

  it('shows the last poll per mailbox in seconds, and none for a mailbox not polled yet', async () => {
    const { metrics, polls } = setup();
    let text = await metrics.registry.metrics();
    expect(samples(text, 'ticketd_last_poll_timestamp_seconds')).toEqual([
      `ticketd_last_poll_timestamp_seconds{mailbox="support"} ${Date.UTC(2025, 2, 3, 9, 41, 0, 500) / 1000}`,
    ]);
    polls.set('sales', 1_700_000_000_000);
    text = await metrics.registry.metrics();
    expect(samples(text, 'ticketd_last_poll_timestamp_seconds')).toContain(
      'ticketd_last_poll_timestamp_seconds{mailbox="sales"} 1700000000',
    );
  });

  it('counts SLA breaches by policy and target', async () => {
    const { metrics } = setup();
    recordSlaBreach(metrics, 'standard', 'first-response');
    recordSlaBreach(metrics, 'standard', 'first-response');
    recordSlaBreach(metrics, 'vip', 'resolution');
    const text = await metrics.registry.metrics();
    expect(samples(text, 'ticketd_sla_breaches_total').sort()).toEqual([
      'ticketd_sla_breaches_total{policy="standard",target="first-response"} 2',
      'ticketd_sla_breaches_total{policy="vip",target="resolution"} 1',
    ]);
  });

  it('includes the process defaults and keeps each registry private', async () => {
    const a = setup().metrics;
    const b = setup().metrics;
    recordIntake(a, result('support', 'taken'));
    const text = await b.registry.metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(samples(text, 'ticketd_messages_taken_total')).toEqual([]);
  });

  it('serves GET /metrics in the Prometheus text format', async () => {
    const { metrics } = setup();
    recordIntake(metrics, result('support', 'taken'));
    const app = Fastify();
    registerMetricsRoute(app, metrics);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    await app.close();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain('ticketd_messages_taken_total{mailbox="support",action="taken"} 1');
    expect(res.body).toContain('ticketd_outbox_pending 3');
  });
});

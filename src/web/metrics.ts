import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueCounts } from '../sla/service-report.js';
import type { IntakeResult, OutboxCounts } from '../store/store.js';

export type SlaTarget = 'first-response' | 'resolution';

/** What the gauges read at scrape time, so they are never stale. */
export interface MetricsSources {
  outboxCounts(): Promise<OutboxCounts>;
  /** Mailbox name to the epoch ms of its last completed poll (null before the first). */
  lastPolls(): Iterable<[mailbox: string, lastPollAt: number | null]>;
  /** The counts of `ticketd report` over all time, per queue ('' for none); absent, no such gauges. */
  serviceCounts?(): Promise<Map<string, QueueCounts>>;
}

export interface Metrics {
  /** Private to this daemon, so nothing else in the process can add to or clash with it. */
  registry: Registry;
  messagesTaken: Counter<'mailbox' | 'action'>;
  messagesQuarantined: Counter<'mailbox'>;
  slaBreaches: Counter<'policy' | 'target'>;
}

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics: Metrics = {
    registry,
    messagesTaken: new Counter({
      name: 'ticketd_messages_taken_total',
      help: 'Messages the pipeline committed, by mailbox and action (taken, threaded, recorded, ignored, duplicate, quarantined).',
      labelNames: ['mailbox', 'action'],
      registers: [registry],
    }),
    messagesQuarantined: new Counter({
      name: 'ticketd_messages_quarantined_total',
      help: 'Messages put in quarantine, by mailbox.',
      labelNames: ['mailbox'],
      registers: [registry],
    }),
    slaBreaches: new Counter({
      name: 'ticketd_sla_breaches_total',
      help: 'SLA targets breached, by policy and target.',
      labelNames: ['policy', 'target'],
      registers: [registry],
    }),
  };

  new Gauge({
    name: 'ticketd_outbox_pending',
    help: 'Outgoing mails waiting to be sent or retried.',
    registers: [registry],
    async collect() {
      this.set((await sources.outboxCounts()).pending);
    },
  });
  new Gauge({
    name: 'ticketd_outbox_failed',
    help: 'Outgoing mails given up on (rejected or out of retries).',
    registers: [registry],
    async collect() {
      this.set((await sources.outboxCounts()).failed);
    },
  });
  new Gauge({
    name: 'ticketd_last_poll_timestamp_seconds',
    help: 'When each IMAP mailbox was last read to the end, as a Unix timestamp.',
    labelNames: ['mailbox'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [mailbox, at] of sources.lastPolls()) {
        if (at !== null) this.set({ mailbox }, at / 1000);
      }
    },
  });
  if (sources.serviceCounts) serviceGauges(registry, sources.serviceCounts.bind(sources));
  return metrics;
}

/**
 * The report's figures that are counts, as gauges read from the database at
 * scrape time (so every node of a cluster shows the same, and a restart
 * loses nothing). One read serves all of them in a scrape.
 */
function serviceGauges(registry: Registry, read: () => Promise<Map<string, QueueCounts>>): void {
  let inFlight: Promise<Map<string, QueueCounts>> | null = null;
  const counts = () => {
    inFlight ??= read().finally(() => {
      inFlight = null;
    });
    return inFlight;
  };
  const perQueue = (name: string, help: string, value: (c: QueueCounts) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        const all = await counts();
        this.reset();
        for (const [queue, c] of all) this.set({ queue }, value(c));
      },
    });
  perQueue('ticketd_queue_tickets_opened', 'Tickets opened, by the queue they are in now ("" for none).', (c) => c.opened);
  perQueue('ticketd_queue_tickets_resolved', 'Tickets resolved, by the queue they are in now.', (c) => c.resolved);
  perQueue('ticketd_queue_handoffs', 'Handoffs of the tickets now in the queue.', (c) => c.handoffs);
  perQueue(
    'ticketd_queue_tickets_reopened',
    'Tickets that a customer reopened, by the queue they are in now.',
    (c) => c.reopened,
  );
  perQueue('ticketd_queue_ratings', 'Ratings given (the latest of each ticket), by queue.', (c) => c.ratings.count);
  perQueue(
    'ticketd_queue_rating_score_sum',
    'Sum of those ratings (1-5); divide by ticketd_queue_ratings for the average.',
    (c) => c.ratings.sum,
  );
  new Gauge({
    name: 'ticketd_answers_used',
    help: 'Uses of each vetted answer, by answer and the queue of the ticket.',
    labelNames: ['answer', 'queue'],
    registers: [registry],
    async collect() {
      const all = await counts();
      this.reset();
      for (const [queue, c] of all) for (const [answer, n] of Object.entries(c.answersUsed)) this.set({ answer, queue }, n);
    },
  });
}

/** Counts one committed intake result; hooked to `Pipeline.onResult`. */
export function recordIntake(metrics: Metrics, r: IntakeResult): void {
  metrics.messagesTaken.inc({ mailbox: r.origin.mailbox, action: r.outcome });
  if (r.outcome === 'quarantined') metrics.messagesQuarantined.inc({ mailbox: r.origin.mailbox });
}

/** Counts one breached SLA target; called by the SLA engine. */
export function recordSlaBreach(metrics: Metrics, policy: string, target: SlaTarget): void {
  metrics.slaBreaches.inc({ policy, target });
}

/** `GET /metrics` in the Prometheus text format. */
export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics): void {
  app.get('/metrics', async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
}

import { loadRunnableConfig } from '../config/load-config.js';
import { redactUrlPassword } from '../config/secrets.js';
import type { Clock } from '../core/clock.js';
import { withDeadline } from '../core/deadline.js';
import type { Logger } from '../core/logger.js';
import { OutboxWorker } from '../outbox/outbox-worker.js';
import { RetrySchedule } from '../outbox/retry-schedule.js';
import { createProgress } from '../core/progress.js';
import { ParsePool } from '../parse/parse-pool.js';
import { ImapWorker } from '../sources/imap/imap-worker.js';
import { startInboundListener, type InboundListener } from '../sources/lmtp/inbound-listener.js';
import { LeaseStore } from '../store/lease-store.js';
import { MailboxLeases, nodeIdentity } from './mailbox-leases.js';
import { planReload } from './reload-plan.js';
import { Runtime } from './runtime.js';
import { createMetrics, recordIntake, recordSlaBreach, registerMetricsRoute, type Metrics } from '../web/metrics.js';
import { checkReadiness } from '../web/readiness.js';
import { startWebServer, type WebServer } from '../web/server.js';
import { SlaScheduler } from '../sla/sla-scheduler.js';

export interface DaemonOptions {
  configPath: string;
  logger: Logger;
  clock: Clock;
  /** How long SIGTERM waits for the outbox to flush what is due before exiting. */
  stopDeadlineMs?: number;
}

export interface Daemon {
  runtime: Runtime;
  imap: Map<string, ImapWorker>;
  outbox: OutboxWorker;
  /** Served at GET /metrics; the SLA engine counts breaches into it (recordSlaBreach). */
  metrics: Metrics;
  /** The LMTP/SMTP listener, when `inbound` is configured. */
  inbound: InboundListener | null;
  /** Runs SLA passes when tickets fall due; `wake()` makes it look again now. */
  sla: SlaScheduler;
  /** The status page, `/healthz`, `/readyz` and `/metrics`; null when `http.enabled` is false. */
  web: WebServer | null;
  reload(): boolean;
  stop(): Promise<void>;
}

/** Starts every worker for a config; the caller wires signals (see `ticketd start`). */
export async function startDaemon(o: DaemonOptions): Promise<Daemon> {
  const runtime = await Runtime.open(loadRunnableConfig(o.configPath), o.logger, o.clock);
  const config = runtime.config;
  const outboxSettings = () => runtime.config.outbox;
  // Getters: the worker reads its settings on every pass, so a reload reaches them.
  const node = nodeIdentity(config.cluster?.nodeName);
  const outbox = new OutboxWorker({
    store: runtime.store,
    mailerFor: (m) => runtime.mailerFor(m),
    get schedule() {
      return new RetrySchedule(outboxSettings().retrySchedule);
    },
    logger: o.logger,
    clock: o.clock,
    get pollIntervalMs() {
      return outboxSettings().pollIntervalMs;
    },
    get batchSize() {
      return outboxSettings().batchSize;
    },
    concurrency: () => runtime.outboxConcurrency(),
    maxInDoubt: () => runtime.config.outbox.maxInDoubt,
    // A claimed row may wait for the sends ahead of it in its batch, then take its own deadline.
    get leaseMs() {
      const c = runtime.config;
      return (
        Math.max(...c.mailboxes.map((m) => runtime.mailerTimeout(m.name))) *
        (Math.ceil(c.outbox.batchSize / runtime.outboxConcurrency()) + 1)
      );
    },
    stillValid: (job) => runtime.sla.beforeSend(job, o.clock.now().getTime()),
    claimant: node.incarnation,
  });
  // The workers running now. On PostgreSQL several nodes share the mailboxes:
  // a node watches only those it holds the lease of, and the map follows them.
  const imap = new Map<string, ImapWorker>();
  const metrics = createMetrics({
    outboxCounts: () => runtime.store.outboxCounts(),
    lastPolls: () => [...imap].map(([name, w]) => [name, w.health().lastPollAt] as [string, number | null]),
    serviceCounts: () => runtime.sla.counts(),
  });
  // Parsing runs on worker threads, so a slow message never holds up IDLE,
  // SMTP, HTTP or LMTP, and one past its deadline can be stopped.
  const parsePool = new ParsePool({ logger: o.logger });
  parsePool.warm();
  const pipeline = runtime.pipelineWith({
    parser: parsePool,
    onResult: (r) => {
      // An acknowledgement of mail taken ahead of a backlog goes ahead of the backlog's acknowledgements too.
      if (r.ackQueued && r.origin.via === 'imap' && r.origin.ahead === true) outbox.wakeFirst(1);
      else if (r.ackQueued) outbox.wake();
      recordIntake(metrics, r);
    },
  });
  const imapWorker = (mailbox: (typeof config.mailboxes)[number]) =>
    new ImapWorker({
      mailbox,
      pipeline,
      logger: o.logger,
      clock: o.clock,
      // On a terminal a first sync shows a bar; under systemd the IMAP_BATCH lines carry `remaining`.
      ...(process.stderr.isTTY ? { progress: createProgress } : {}),
    });
  const clustered = runtime.engine.kind === 'postgres';
  // Every node beats, so its outbox claims live only as long as it does (a
  // restarted node sends what its killed predecessor had claimed at once);
  // only on PostgreSQL do the nodes also lease the mailboxes among them.
  const leases = new MailboxLeases({
    store: new LeaseStore(runtime.engine),
    node,
    mailboxes: clustered ? config.mailboxes.filter((m) => m.imap).map((m) => m.name) : [],
    clock: o.clock,
    logger: o.logger,
    leaseMs: config.cluster?.leaseMs,
    onAcquire(name) {
      const mailbox = runtime.config.mailboxes.find((m) => m.name === name);
      if (!mailbox?.imap) return;
      const worker = imapWorker(mailbox);
      imap.set(name, worker);
      worker.start();
    },
    async onRelease(name) {
      const worker = imap.get(name);
      imap.delete(name);
      await worker?.stop();
    },
  });
  if (!clustered) for (const mailbox of config.mailboxes) if (mailbox.imap) imap.set(mailbox.name, imapWorker(mailbox));

  const inbound = config.inbound
    ? await startInboundListener({
        config: config.inbound,
        pipeline,
        mailboxes: () => runtime.config.mailboxes,
        logger: o.logger,
      })
    : null;

  const sla = new SlaScheduler({
    engine: runtime.sla,
    clock: o.clock,
    logger: o.logger,
    onPass: (report) => {
      if (report.queued.length > 0) outbox.wake();
      for (const b of report.breached) recordSlaBreach(metrics, b.policy, b.target);
    },
  });

  let web: WebServer | null = null;
  if (config.http.enabled) {
    const statusStore = runtime.statusPages;
    // Read per request: a reload may have started the worker of a new mailbox.
    const mailboxes = () =>
      runtime.config.mailboxes.flatMap((m) => {
        const worker = imap.get(m.name);
        return worker && m.imap ? [{ name: m.name, pollIntervalMs: m.imap.pollIntervalMs, health: () => worker.health() }] : [];
      });
    try {
      web = await startWebServer({
        site: runtime,
        api: runtime,
        readiness: () =>
          checkReadiness({
            statusStore,
            outboxCounts: () => runtime.store.outboxCounts(),
            mailboxes: mailboxes(),
            clock: o.clock,
            node: clustered ? { name: leases.node.name, holds: leases.holding() } : undefined,
          }),
        extend: (app) => registerMetricsRoute(app, metrics),
      });
    } catch (err) {
      await inbound?.close();
      await parsePool.close();
      await runtime.close();
      throw err;
    }
  }

  // the node's row first: a claim naming a node without one counts as dead
  await leases.start();
  outbox.start();
  sla.start();
  if (!clustered) for (const w of imap.values()) w.start();
  o.logger.info(
    {
      code: 'DAEMON_STARTED',
      mailboxes: config.mailboxes.map((m) => m.name),
      database: redactUrlPassword(config.database),
      pid: process.pid,
      ...(clustered && { node: leases.node.name, holds: leases.holding() }),
    },
    'ticketd started',
  );

  let stopping: Promise<void> | null = null;
  return {
    runtime,
    imap,
    outbox,
    metrics,
    inbound,
    sla,
    web,
    reload() {
      let plan: ReturnType<typeof planReload>;
      try {
        plan = planReload(runtime.config, loadRunnableConfig(o.configPath));
        runtime.reload(plan.effective);
      } catch (err) {
        const problems = (err as { problems?: unknown[] }).problems;
        o.logger.error(
          { code: 'CONFIG_RELOAD_REFUSED', error: (err as Error).message, problems },
          'new configuration or templates refused; the previous ones stay in force',
        );
        return false;
      }
      for (const setting of plan.restartNeeded) {
        o.logger.warn(
          { code: 'CONFIG_RESTART_NEEDED', setting: setting.path, ...(setting.mailbox && { mailbox: setting.mailbox }) },
          `${setting.path}${setting.mailbox ? ` (mailbox "${setting.mailbox}" removed)` : ''} changed: takes effect at the next restart; the running value stays until then`,
        );
      }
      const started: string[] = [];
      for (const mailbox of plan.addedMailboxes) {
        if (!mailbox.imap || stopping || imap.has(mailbox.name)) continue;
        const worker = imapWorker(mailbox);
        imap.set(mailbox.name, worker);
        worker.start();
        started.push(mailbox.name);
      }
      const applied = plan.applied.map((s) => s.path);
      o.logger.info(
        { code: 'CONFIG_RELOADED', applied, restartNeeded: plan.restartNeeded.map((s) => s.path), imapStarted: started },
        applied.length === 0
          ? 'templates reloaded; no changed setting to apply'
          : `templates reloaded; applied: ${applied.join(', ')}`,
      );
      // Last, so a quieter level does not hide the lines above.
      o.logger.level = runtime.config.log.level;
      return true;
    },
    stop() {
      stopping ??= (async () => {
        o.logger.info({ code: 'DAEMON_STOPPING' }, 'stopping: finishing the messages in hand');
        await web?.close();
        await inbound?.close();
        // hands the mailboxes over at once rather than after the lease runs out
        await leases.stop();
        await Promise.all([...imap.values()].map((w) => w.stop()));
        await sla.stop();
        // Give what is already due one last chance to go out before exiting;
        // anything left stays queued in the database for the next start.
        const deadlineMs = o.stopDeadlineMs ?? 10_000;
        await withDeadline(outbox.stop(), deadlineMs, () => {
          o.logger.warn(
            { code: 'OUTBOX_STOP_TIMEOUT', deadlineMs },
            'stopped with sends still waiting for the SMTP server; any it accepted is sent again after the next start',
          );
        });
        await leases.leave();
        await parsePool.close();
        await runtime.close();
        o.logger.info({ code: 'DAEMON_STOPPED' }, 'ticketd stopped');
      })();
      return stopping;
    },
  };
}

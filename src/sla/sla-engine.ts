// The SLA engine as the rest of ticketd sees it: the store calls
// `onTicketChange` (its afterTicketChange hook) inside every ticket change's
// transaction, the scheduler
// and `ticketd sla tick` call `tick`, the acknowledgement and the status
// page ask for the estimate and the promise.

import type { TemplateRegistry } from '../compose/template-registry.js';
import type { Config } from '../config/load-config.js';
import type { Logger } from '../core/logger.js';
import { Wakeup } from '../core/wakeup.js';
import type { SqlEngine, SqlTransaction } from '../store/sql-engine.js';
import type { TicketRow } from '../store/store.js';
import type { StatusLinks } from '../core/status-links.js';
import { HISTORY_WINDOW_MS, estimateDelay, type DelayEstimate, type History } from './delay-estimate.js';
import { applyChange, nextDue, type SlaTarget } from './sla-clock.js';
import { checkNotice } from './notice-check.js';
import { SlaPolicies, type SlaPolicy } from './sla-policy.js';
import { serviceCounts, serviceReport, type QueueCounts, type ReportWindow, type ServiceReport } from './service-report.js';
import { describeSla, type SlaTicketStatus } from './sla-status.js';
import { SlaStore } from './sla-store.js';
import { runTick, type TickReport } from './sla-tick.js';

export interface SlaEngineDeps {
  /** The database the store uses; the SLA engine's storage (sla-store.ts) is written over it. */
  engine: SqlEngine;
  /** Read on every use, so a reload takes effect at the next change or tick. */
  config: () => Config;
  templates: () => TemplateRegistry;
  links: StatusLinks;
  logger: Logger;
}

export class SlaEngine {
  readonly sla: SlaStore;
  private readonly compiled = new WeakMap<Config, SlaPolicies>();
  /**
   * Woken after a change moved a deadline; the scheduler sleeps on it, so a
   * waiting pass looks again (after the commit). Made with the engine, so
   * nothing is hooked in later and a wake before the scheduler starts is harmless.
   */
  readonly deadlineMoved = new Wakeup();

  constructor(private readonly d: SlaEngineDeps) {
    this.sla = new SlaStore(d.engine);
    this.prepare(d.config());
  }

  /** Compiles the policies of a config; throws (with a `code`) when one cannot run, so a reload can refuse it. */
  prepare(config: Config): SlaPolicies {
    let policies = this.compiled.get(config);
    if (!policies) {
      policies = SlaPolicies.compile(config);
      this.compiled.set(config, policies);
    }
    return policies;
  }

  policies(): SlaPolicies {
    return this.prepare(this.d.config());
  }

  /** `ticketd report`: the service figures per queue for a window, read from one snapshot so they agree. */
  report(w: ReportWindow, now: number): Promise<ServiceReport> {
    return this.d.engine.snapshot((s) => serviceReport(s, this.policies(), w, now));
  }

  /** The report's counts per queue over all time ('' for no queue), which /metrics shows as gauges. */
  counts(): Promise<Map<string, QueueCounts>> {
    return this.d.engine.snapshot((s) => serviceCounts(s, { since: null, queue: null }));
  }

  /**
   * Brings a ticket's clock up to date after a change at `now`. Runs inside
   * the change's transaction (the store's hook), in a savepoint of its own:
   * an SLA failure is logged and undone, never allowed to undo the change (a
   * message must be taken even if its deadline cannot be computed), and
   * leaves the transaction usable on an engine that aborts it on an error.
   */
  async onTicketChange(tx: SqlTransaction, ticketId: number, now: number): Promise<void> {
    try {
      const moved = await tx.savepoint(async (sp) => {
        const sla = new SlaStore(sp);
        const ticket = await sla.tickets.ticketRow(ticketId);
        if (!ticket) return false;
        const policy = this.policies().forTicket(ticket);
        const stored = await sla.get(ticketId);
        if (!policy) {
          if (stored) await sla.remove(ticketId);
          return false;
        }
        const state = applyChange(stored?.state ?? null, policy, ticket, now);
        const recorded = stored ? await sla.records(ticketId) : [];
        const due = nextDue(state, policy.plan, recorded, policy.calendar);
        await sla.save(ticketId, state, due, now);
        return due !== stored?.nextDue;
      });
      // after the commit: a scheduler reading the next deadline on another connection sees it then
      if (moved) tx.afterCommit(() => this.deadlineMoved.wake());
    } catch (err) {
      this.d.logger.error(
        { code: 'SLA_CHANGE_ERROR', ticketId, error: (err as Error).message, errorCode: (err as { code?: string }).code },
        'SLA deadlines of a ticket could not be updated',
      );
    }
  }

  /** One evaluation pass at `now`; see runTick. */
  tick(now: number, opts: { limit?: number; dryRun?: boolean } = {}): Promise<TickReport> {
    const config = this.d.config();
    const estimates = new Map<string, DelayEstimate>();
    return runTick(
      {
        engine: this.d.engine,
        policies: this.prepare(config),
        config,
        templates: this.d.templates(),
        links: this.d.links,
        logger: this.d.logger,
        // One history lookup per policy and target per pass, however many notices go out.
        estimate: async (sla, policy, target, at) => {
          const key = `${policy.name}|${target}`;
          let e = estimates.get(key);
          if (!e) {
            e = await this.estimateWith(sla, policy, target, at);
            estimates.set(key, e);
          }
          return e;
        },
      },
      now,
      opts,
    );
  }

  /**
   * Asked by the outbox just before it sends a row: false when the row is a
   * delay notice or staff warning that no longer holds, which is then
   * withdrawn (outbox row, threshold record, a ticket event and a log line)
   * instead of sent. Any other mail passes without a database read.
   */
  async beforeSend(job: { id: number; messageRow: number; kind: string }, now: number): Promise<boolean> {
    if (job.kind !== 'delay-notice' && job.kind !== 'staff-warning') return true;
    const notice = job.kind === 'delay-notice';
    type Outcome =
      | { send: true }
      | { send: false; withdrawn: { ref: string; target: string; threshold: string; reason: string } | null };
    try {
      const outcome = await this.d.engine.transaction(async (tx): Promise<Outcome> => {
        const sla = new SlaStore(tx);
        const record = await sla.recordOfMessage(job.messageRow);
        const ticket = record ? await sla.tickets.ticketRow(record.ticketId) : null;
        if (!record || !ticket || record.outcome !== 'queued') return { send: true };
        const stored = await sla.get(ticket.id);
        const verdict = checkNotice({
          milestone: record,
          status: ticket.status,
          state: stored?.state ?? null,
          policy: stored ? this.policies().named(stored.state.policy) : null,
          now,
        });
        if (verdict.send) return { send: true };
        // The row is no longer pending when another worker sent or withdrew it meanwhile: not ours to send either way.
        if (!(await sla.withdraw(job.id, job.messageRow, verdict.reason, now))) return { send: false, withdrawn: null };
        const detail = { target: record.target, threshold: record.threshold, reason: verdict.reason };
        await sla.tickets.event(ticket.id, notice ? 'notice-withdrawn' : 'warning-withdrawn', false, detail, now);
        return { send: false, withdrawn: { ref: ticket.ref, ...detail } };
      });
      if (outcome.send) return true;
      const withdrawn = outcome.withdrawn;
      if (withdrawn === null) return false;
      this.d.logger.info(
        { code: notice ? 'SLA_NOTICE_WITHDRAWN' : 'SLA_WARNING_WITHDRAWN', outboxId: job.id, ...withdrawn },
        `${notice ? 'delay notice' : 'staff warning'} withdrawn before sending: ${withdrawn.reason}`,
      );
      return false;
    } catch (err) {
      // A check that cannot run must not hold mail back: send as queued.
      this.d.logger.error(
        { code: 'SLA_CHECK_ERROR', outboxId: job.id, error: (err as Error).message },
        'pre-send SLA check failed; sending',
      );
      return true;
    }
  }

  /** The earliest instant any ticket is due, or null. */
  nextDue(): Promise<number | null> {
    return this.sla.nextDue();
  }

  /** Honest expected time to meet `target` from `at`: recent history of the policy, else the target. */
  estimate(policy: SlaPolicy, target: SlaTarget, at: number): Promise<DelayEstimate> {
    return this.estimateWith(this.sla, policy, target, at);
  }

  private async estimateWith(sla: SlaStore, policy: SlaPolicy, target: SlaTarget, at: number): Promise<DelayEstimate> {
    return projectEstimate(policy, target, await sla.history(policy.name, target, at - HISTORY_WINDOW_MS, at), at);
  }

  /** Expected wall-clock time to a first reply in milliseconds, for the acknowledgement; 0 when no policy applies. */
  async firstResponseEstimate(ticket: TicketRow): Promise<number> {
    const policy = this.policies().forTicket(ticket);
    return policy ? (await this.estimate(policy, 'first-response', ticket.createdAt)).wallMs : 0;
  }

  /**
   * firstResponseEstimate for the tickets of one intake batch, as a pure
   * function: the history of every policy is read here, before the batch's
   * transaction, so the acknowledgements composed inside it read nothing.
   */
  async firstResponseEstimator(at: number): Promise<(ticket: TicketRow) => number> {
    const policies = this.policies();
    const histories = new Map<string, History>();
    for (const policy of policies.list) {
      histories.set(policy.name, await this.sla.history(policy.name, 'first-response', at - HISTORY_WINDOW_MS, at));
    }
    return (ticket) => {
      const policy = policies.forTicket(ticket);
      const history = policy ? histories.get(policy.name) : undefined;
      return policy && history ? projectEstimate(policy, 'first-response', history, ticket.createdAt).wallMs : 0;
    };
  }

  /** The next deadline the customer is waiting on, or null when none is running. */
  async promise(ticket: TicketRow): Promise<{ target: SlaTarget; due: Date } | null> {
    const stored = await this.sla.get(ticket.id);
    if (!stored) return null;
    const { firstResponse, resolution } = stored.state;
    if (firstResponse.metAt === null && firstResponse.dueAt !== null)
      return { target: 'first-response', due: new Date(firstResponse.dueAt) };
    if (resolution.metAt === null && resolution.dueAt !== null) return { target: 'resolution', due: new Date(resolution.dueAt) };
    return null;
  }

  /** SLA status of one ticket, or of every open, pending or on-hold ticket with an SLA. */
  async status(ticket: TicketRow | null, now: number): Promise<SlaTicketStatus[]> {
    const ids = ticket ? [ticket.id] : await this.sla.liveTickets();
    const policies = this.policies();
    const out: SlaTicketStatus[] = [];
    for (const id of ids) {
      const t = ticket ?? (await this.sla.tickets.ticketRow(id));
      if (!t) continue;
      const stored = await this.sla.get(id);
      const calendar = stored ? (policies.named(stored.state.policy)?.calendar ?? null) : null;
      out.push(describeSla(t, stored, calendar, await this.sla.noticesQueued(id), now));
    }
    return out;
  }
}

function projectEstimate(policy: SlaPolicy, target: SlaTarget, history: History, at: number): DelayEstimate {
  return estimateDelay({
    history,
    targetMs: target === 'first-response' ? policy.firstResponseMs : policy.resolutionMs,
    calendar: policy.calendar,
    from: at,
  });
}

// One evaluation pass at an instant: the tickets whose next threshold is due
// (an index range, nothing else is read), and for each the thresholds that
// have passed. Every threshold is recorded once, in the same transaction
// that queues its mail.

import type { ComposeContext } from '../compose/compose-mail.js';
import type { TemplateRegistry } from '../compose/template-registry.js';
import type { Config } from '../config/load-config.js';
import type { Logger } from '../core/logger.js';
import { mailboxNamed, statusUrlFor } from '../pipeline/intake-policy.js';
import type { SlaStore } from '../store/sla-store.js';
import type { SqliteStore } from '../store/sqlite-store.js';
import type { TicketRow } from '../store/store.js';
import type { StatusLinks } from '../core/status-links.js';
import type { DelayEstimate } from './delay-estimate.js';
import { parsePercent } from '../core/duration.js';
import { composeDelayNotice, composeStaffWarning, noticeStatus } from './sla-mail.js';
import type { SlaPolicies, SlaPolicy } from './sla-policy.js';
import {
  clockRuns,
  dueMilestones,
  nextDue,
  targetClock,
  type Milestone,
  type RecordedMilestone,
  type SlaState,
  type SlaTarget,
} from './sla-clock.js';

/** Tickets evaluated per transaction; the scheduler runs the next batch right after. */
export const TICK_BATCH = 500;
/** A ticket whose evaluation failed (a template that cannot render, say) is looked at again after this. */
export const TICK_RETRY_MS = 15 * 60_000;

export interface TickDeps {
  store: SqliteStore;
  sla: SlaStore;
  policies: SlaPolicies;
  config: Config;
  templates: TemplateRegistry;
  links: StatusLinks;
  logger: Logger;
  /** Estimate for a policy and target at an instant (cached by the caller). */
  estimate: (policy: SlaPolicy, target: SlaTarget, at: number) => DelayEstimate;
}

export interface QueuedMail {
  ref: string;
  kind: 'delay-notice' | 'staff-warning';
  target: SlaTarget;
  threshold: string;
  to: string;
  /** Delay notices: how many this one makes for the ticket. */
  noticeNumber?: number;
  estimateSource?: 'history' | 'target';
  /** The estimate the notice gives, in English words for the operator. */
  estimate?: string;
}

export interface SkippedMilestone {
  ref: string;
  kind: Milestone['kind'];
  target: SlaTarget;
  threshold: string;
  outcome: 'skipped' | 'superseded';
  reason: string;
}

export interface TickReport {
  now: string;
  /** Tickets that were due and evaluated. */
  tickets: number;
  queued: QueuedMail[];
  skipped: SkippedMilestone[];
  breached: { ref: string; policy: string; target: SlaTarget; cycle: number }[];
  errors: { ref: string; error: string }[];
  /** More tickets were due than one batch holds. */
  more: boolean;
  dryRun: boolean;
}

class DryRunRollback extends Error {}

/** One pass at `now`. With `dryRun` everything is evaluated and reported, then rolled back. */
export function runTick(d: TickDeps, now: number, opts: { limit?: number; dryRun?: boolean } = {}): TickReport {
  const limit = opts.limit ?? TICK_BATCH;
  const report: TickReport = {
    now: new Date(now).toISOString(),
    tickets: 0,
    queued: [],
    skipped: [],
    breached: [],
    errors: [],
    more: false,
    dryRun: opts.dryRun === true,
  };
  try {
    d.sla.write(() => {
      const due = d.sla.dueTickets(now, limit + 1);
      report.more = due.length > limit;
      for (const ticketId of due.slice(0, limit)) {
        report.tickets++;
        evaluateTicket(d, ticketId, now, report);
      }
      if (opts.dryRun) throw new DryRunRollback();
    });
  } catch (err) {
    if (!(err instanceof DryRunRollback)) throw err;
  }
  if (!report.dryRun) logReport(d.logger, report);
  return report;
}

function evaluateTicket(d: TickDeps, ticketId: number, now: number, report: TickReport): void {
  const stored = d.sla.get(ticketId);
  const ticket = d.store.ticketRow(ticketId);
  const policy = stored ? d.policies.named(stored.state.policy) : null;
  if (!stored || !ticket || !policy) {
    // The policy left the config: nothing can fall due until the next change re-matches the ticket.
    d.sla.setNextDue(ticketId, null, now);
    return;
  }
  // Changes of this ticket's own pass (records, mails) roll back together on failure.
  const found: { queued: QueuedMail[]; skipped: SkippedMilestone[]; breached: TickReport['breached'] } = {
    queued: [],
    skipped: [],
    breached: [],
  };
  try {
    d.store.db.transaction(() => evaluateMilestones(d, ticket, stored.state, policy, now, found))();
  } catch (err) {
    d.sla.setNextDue(ticketId, now + TICK_RETRY_MS, now);
    report.errors.push({ ref: ticket.ref, error: (err as Error).message });
    return;
  }
  report.queued.push(...found.queued);
  report.skipped.push(...found.skipped);
  report.breached.push(...found.breached);
}

function evaluateMilestones(
  d: TickDeps,
  ticket: TicketRow,
  state: SlaState,
  policy: SlaPolicy,
  now: number,
  found: Pick<TickReport, 'queued' | 'skipped' | 'breached'>,
): void {
  const recorded: RecordedMilestone[] = d.sla.records(ticket.id);
  const due = dueMilestones(state, policy.plan, recorded, now, policy.calendar);
  const note = (m: Milestone, outcome: 'queued' | 'skipped' | 'superseded' | 'logged', reason: string | null): boolean => {
    const fresh = d.sla.record(ticket.id, m, outcome, reason, now);
    recorded.push(m);
    if (fresh && (outcome === 'skipped' || outcome === 'superseded')) {
      found.skipped.push({ ref: ticket.ref, kind: m.kind, target: m.target, threshold: m.threshold, outcome, reason: reason ?? '' });
    }
    return fresh;
  };

  for (const m of due.superseded) note(m, 'superseded', 'a later threshold was due at the same time');
  let noticeQueued = false;
  for (const m of due.act) {
    if (m.kind === 'breach') {
      if (note(m, 'logged', null)) found.breached.push({ ref: ticket.ref, policy: policy.name, target: m.target, cycle: m.cycle });
    } else if (m.kind === 'warning') {
      const to = d.policies.staffAddressFor(policy, ticket.mailbox);
      if (to === null) note(m, 'skipped', 'no staff address configured');
      else if (note(m, 'queued', null)) queueWarning(d, ticket, state, policy, m, to, now, found.queued);
    } else {
      const blocked = noticeBlocked(d, ticket);
      // Two targets breaching in one pass still make one apology.
      if (blocked !== null) note(m, 'skipped', blocked);
      else if (noticeQueued) note(m, 'superseded', 'another notice went out in the same pass');
      else if (note(m, 'queued', null)) {
        queueNotice(d, ticket, state, policy, m, now, found.queued);
        noticeQueued = true;
      }
    }
  }
  d.sla.setNextDue(ticket.id, nextDue(state, policy.plan, recorded, policy.calendar), now);
}

/**
 * Where a delay notice goes: it is automatic mail, so where the
 * acknowledgement went (RFC 3834 section 4), never to a Reply-To nobody
 * checked. Tickets from before that address was recorded have none and use
 * their reply address; a ticket whose acknowledgement was withheld gets no
 * notice at all (noticeBlocked).
 */
function noticeAddress(ticket: TicketRow): string {
  return ticket.ackTo ?? ticket.replyTo;
}

/** Why a customer must not get a delay notice, or null when they may. */
function noticeBlocked(d: TickDeps, ticket: TicketRow): string | null {
  if (!clockRuns(ticket.status)) return `ticket is ${ticket.status}`;
  const to = noticeAddress(ticket);
  if (to === '') return 'no address to write to';
  if (d.sla.isSuppressed(to) || d.sla.isSuppressed(ticket.requester)) return 'requester is suppressed (bounced)';
  if (d.sla.ackSuppressed(ticket.id)) return 'no automatic mail to this requester (acknowledgement was suppressed)';
  return null;
}

function composeContext(d: TickDeps, ticket: TicketRow): ComposeContext {
  return { config: d.config, mailbox: mailboxNamed(d.config, ticket.mailbox), templates: d.templates };
}

function queueNotice(d: TickDeps, ticket: TicketRow, state: SlaState, policy: SlaPolicy, m: Milestone, now: number, queued: QueuedMail[]): void {
  const estimate = d.estimate(policy, m.target, now);
  const waitingSince = m.target === 'first-response' ? ticket.createdAt : state.resolution.startedAt;
  // The record of this notice is already written, so the count includes it.
  const noticeNumber = d.sla.noticesQueued(ticket.id);
  const ids = d.sla.threadIds(ticket.id);
  const draft = composeDelayNotice(
    composeContext(d, ticket),
    ticket,
    {
      waited: Math.max(0, now - waitingSince),
      status: noticeStatus(ticket),
      onHoldReason: ticket.status === 'on-hold' ? (ticket.onHoldReason ?? '') : '',
      estimate: estimate.wallMs,
      estimateSource: estimate.source,
      queuePosition: d.store.queuePosition(ticket),
      statusUrl: statusUrlFor(d.config, d.store.tokenFor(ticket.id, noticeAddress(ticket), d.links, now)),
      noticeNumber,
    },
    { inReplyTo: ids.at(-1) ?? null, references: ids },
    noticeAddress(ticket),
  );
  d.sla.linkMessage(ticket.id, m, d.store.queueOutbound(ticket.id, ticket.mailbox, draft, now));
  d.store.event(ticket.id, 'delay-notice', true, { target: m.target, notice: noticeNumber }, now);
  queued.push({
    ref: ticket.ref,
    kind: 'delay-notice',
    target: m.target,
    threshold: m.threshold,
    to: noticeAddress(ticket),
    noticeNumber,
    estimateSource: estimate.source,
    estimate: estimate.words,
  });
}

function queueWarning(
  d: TickDeps,
  ticket: TicketRow,
  state: SlaState,
  policy: SlaPolicy,
  m: Milestone,
  to: string,
  now: number,
  queued: QueuedMail[],
): void {
  const dueAt = targetClock(state, m.target).dueAt;
  const draft = composeStaffWarning(composeContext(d, ticket), ticket, to, {
    policy: policy.name,
    target: m.target,
    threshold: parsePercent(m.threshold),
    due: dueAt === null ? '' : new Date(dueAt).toISOString(),
    ticketUrl: statusUrlFor(d.config, d.store.tokenFor(ticket.id, to, d.links, now)),
  });
  d.sla.linkMessage(ticket.id, m, d.store.queueOutbound(ticket.id, ticket.mailbox, draft, now));
  d.store.event(ticket.id, 'sla-warning', false, { target: m.target, threshold: m.threshold, to }, now);
  queued.push({ ref: ticket.ref, kind: 'staff-warning', target: m.target, threshold: m.threshold, to });
}

function logReport(logger: Logger, r: TickReport): void {
  for (const b of r.breached) logger.warn({ code: 'SLA_BREACHED', ...b }, 'SLA target breached');
  for (const q of r.queued) {
    const { kind, ...fields } = q;
    if (kind === 'delay-notice') logger.info({ code: 'SLA_NOTICE_QUEUED', ...fields }, 'delay notice queued');
    else logger.info({ code: 'SLA_WARNING_QUEUED', ...fields }, 'staff warning queued');
  }
  for (const s of r.skipped) {
    if (s.outcome === 'skipped') logger.warn({ code: 'SLA_THRESHOLD_SKIPPED', ...s }, `SLA ${s.kind} not sent: ${s.reason}`);
  }
  for (const e of r.errors) {
    logger.error({ code: 'SLA_TICK_ERROR', ref: e.ref, error: e.error }, `SLA evaluation failed; retrying in ${TICK_RETRY_MS / 60_000} minutes`);
  }
  logger.info(
    { code: 'SLA_TICK', now: r.now, tickets: r.tickets, queued: r.queued.length, breached: r.breached.length, more: r.more },
    'SLA pass done',
  );
}

// One evaluation pass at an instant: the tickets whose next threshold is due
// (an index range, nothing else is read), and for each the thresholds that
// have passed. Every threshold is recorded once, in the same transaction
// that queues its mail.

import type { ComposeContext } from '../compose/compose-mail.js';
import type { TemplateRegistry } from '../compose/template-registry.js';
import type { Config } from '../config/load-config.js';
import type { Logger } from '../core/logger.js';
import { mailboxNamed } from '../pipeline/intake-policy.js';
import type { SqlEngine, SqlTransaction } from '../store/sql-engine.js';
import type { TicketRow } from '../store/store.js';
import { statusUrlFor, type StatusLinks } from '../core/status-links.js';
import type { DelayEstimate } from './delay-estimate.js';
import { composeDelayNotice, composeStaffWarning, noticeStatus } from './sla-mail.js';
import type { SlaPolicies, SlaPolicy } from './sla-policy.js';
import { SlaStore } from './sla-store.js';
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
  engine: SqlEngine;
  policies: SlaPolicies;
  config: Config;
  templates: TemplateRegistry;
  links: StatusLinks;
  logger: Logger;
  /** Estimate for a policy and target at an instant (cached by the caller), read in the pass's session. */
  estimate: (sla: SlaStore, policy: SlaPolicy, target: SlaTarget, at: number) => Promise<DelayEstimate>;
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
export async function runTick(d: TickDeps, now: number, opts: { limit?: number; dryRun?: boolean } = {}): Promise<TickReport> {
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
    // A write transaction taken up front, so two processes ticking at once queue nothing twice.
    await d.engine.transaction(async (tx) => {
      const due = await new SlaStore(tx).dueTickets(now, limit + 1);
      report.more = due.length > limit;
      for (const ticketId of due.slice(0, limit)) {
        report.tickets++;
        await evaluateTicket(d, tx, ticketId, now, report);
      }
      if (opts.dryRun) throw new DryRunRollback();
    });
  } catch (err) {
    if (!(err instanceof DryRunRollback)) throw err;
  }
  if (!report.dryRun) logReport(d.logger, report);
  return report;
}

async function evaluateTicket(d: TickDeps, tx: SqlTransaction, ticketId: number, now: number, report: TickReport): Promise<void> {
  const sla = new SlaStore(tx);
  const stored = await sla.get(ticketId);
  const ticket = await sla.tickets.ticketRow(ticketId);
  const policy = stored ? d.policies.named(stored.state.policy) : null;
  if (!stored || !ticket || !policy) {
    // The policy left the config: nothing can fall due until the next change re-matches the ticket.
    await sla.setNextDue(ticketId, null, now);
    return;
  }
  // Changes of this ticket's own pass (records, mails) roll back together on failure.
  const found: { queued: QueuedMail[]; skipped: SkippedMilestone[]; breached: TickReport['breached'] } = {
    queued: [],
    skipped: [],
    breached: [],
  };
  try {
    await tx.savepoint((sp) => evaluateMilestones(d, new SlaStore(sp), ticket, stored.state, policy, now, found));
  } catch (err) {
    await sla.setNextDue(ticketId, now + TICK_RETRY_MS, now);
    report.errors.push({ ref: ticket.ref, error: (err as Error).message });
    return;
  }
  report.queued.push(...found.queued);
  report.skipped.push(...found.skipped);
  report.breached.push(...found.breached);
}

async function evaluateMilestones(
  d: TickDeps,
  sla: SlaStore,
  ticket: TicketRow,
  state: SlaState,
  policy: SlaPolicy,
  now: number,
  found: Pick<TickReport, 'queued' | 'skipped' | 'breached'>,
): Promise<void> {
  const recorded: RecordedMilestone[] = await sla.records(ticket.id);
  const due = dueMilestones(state, policy.plan, recorded, now, policy.calendar);
  const note = async (
    m: Milestone,
    outcome: 'queued' | 'skipped' | 'superseded' | 'logged',
    reason: string | null,
  ): Promise<boolean> => {
    const fresh = await sla.record(ticket.id, m, outcome, reason, now);
    recorded.push(m);
    if (fresh && (outcome === 'skipped' || outcome === 'superseded')) {
      found.skipped.push({
        ref: ticket.ref,
        kind: m.kind,
        target: m.target,
        threshold: m.threshold,
        outcome,
        reason: reason ?? '',
      });
    }
    return fresh;
  };

  for (const m of due.superseded) await note(m, 'superseded', 'a later threshold was due at the same time');
  let noticeQueued = false;
  for (const m of due.act) {
    if (m.kind === 'breach') {
      if (await note(m, 'logged', null))
        found.breached.push({ ref: ticket.ref, policy: policy.name, target: m.target, cycle: m.cycle });
    } else if (m.kind === 'warning') {
      const to = d.policies.staffAddressFor(policy, ticket.mailbox);
      if (to === null) await note(m, 'skipped', 'no staff address configured');
      else if (await note(m, 'queued', null)) await queueWarning(d, sla, ticket, state, policy, m, to, now, found.queued);
    } else {
      const blocked = await noticeBlocked(sla, ticket);
      // Two targets breaching in one pass still make one apology.
      if (blocked !== null) await note(m, 'skipped', blocked);
      else if (noticeQueued) await note(m, 'superseded', 'another notice went out in the same pass');
      else if (await note(m, 'queued', null)) {
        await queueNotice(d, sla, ticket, state, policy, m, now, found.queued);
        noticeQueued = true;
      }
    }
  }
  await sla.setNextDue(ticket.id, nextDue(state, policy.plan, recorded, policy.calendar), now);
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
async function noticeBlocked(sla: SlaStore, ticket: TicketRow): Promise<string | null> {
  if (!clockRuns(ticket.status)) return `ticket is ${ticket.status}`;
  const to = noticeAddress(ticket);
  if (to === '') return 'no address to write to';
  if ((await sla.isSuppressed(to)) || (await sla.isSuppressed(ticket.requester))) return 'requester is suppressed (bounced)';
  if (await sla.ackSuppressed(ticket.id)) return 'no automatic mail to this requester (acknowledgement was suppressed)';
  return null;
}

function composeContext(d: TickDeps, ticket: TicketRow): ComposeContext {
  return { config: d.config, mailbox: mailboxNamed(d.config, ticket.mailbox), templates: d.templates };
}

async function queueNotice(
  d: TickDeps,
  sla: SlaStore,
  ticket: TicketRow,
  state: SlaState,
  policy: SlaPolicy,
  m: Milestone,
  now: number,
  queued: QueuedMail[],
): Promise<void> {
  const estimate = await d.estimate(sla, policy, m.target, now);
  const waitingSince = m.target === 'first-response' ? ticket.createdAt : state.resolution.startedAt;
  // The record of this notice is already written, so the count includes it.
  const noticeNumber = await sla.noticesQueued(ticket.id);
  const ids = await sla.tickets.threadIds(ticket.id);
  const queuePosition = await sla.tickets.queuePosition(ticket);
  const token = await sla.tickets.tokenFor(ticket.id, noticeAddress(ticket), d.links, now);
  const draft = composeDelayNotice(
    composeContext(d, ticket),
    ticket,
    {
      waited: Math.max(0, now - waitingSince),
      status: noticeStatus(ticket),
      onHoldReason: ticket.status === 'on-hold' ? (ticket.onHoldReason ?? '') : '',
      estimate: estimate.wallMs,
      estimateSource: estimate.source,
      queuePosition,
      statusUrl: statusUrlFor(d.config, token),
      noticeNumber,
    },
    { inReplyTo: ids.at(-1) ?? null, references: ids },
    noticeAddress(ticket),
  );
  await sla.linkMessage(ticket.id, m, await sla.tickets.queueOutbound(ticket.id, ticket.mailbox, draft, now));
  await sla.tickets.event(ticket.id, 'delay-notice', true, { target: m.target, notice: noticeNumber }, now);
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

async function queueWarning(
  d: TickDeps,
  sla: SlaStore,
  ticket: TicketRow,
  state: SlaState,
  policy: SlaPolicy,
  m: Milestone & { kind: 'warning' },
  to: string,
  now: number,
  queued: QueuedMail[],
): Promise<void> {
  const dueAt = targetClock(state, m.target).dueAt;
  const token = await sla.tickets.tokenFor(ticket.id, to, d.links, now);
  const draft = composeStaffWarning(composeContext(d, ticket), ticket, to, {
    policy: policy.name,
    target: m.target,
    threshold: m.share,
    due: dueAt === null ? '' : new Date(dueAt).toISOString(),
    ticketUrl: statusUrlFor(d.config, token),
  });
  await sla.linkMessage(ticket.id, m, await sla.tickets.queueOutbound(ticket.id, ticket.mailbox, draft, now));
  await sla.tickets.event(ticket.id, 'sla-warning', false, { target: m.target, threshold: m.threshold, to }, now);
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
    logger.error(
      { code: 'SLA_TICK_ERROR', ref: e.ref, error: e.error },
      `SLA evaluation failed; retrying in ${TICK_RETRY_MS / 60_000} minutes`,
    );
  }
  logger.info(
    { code: 'SLA_TICK', now: r.now, tickets: r.tickets, queued: r.queued.length, breached: r.breached.length, more: r.more },
    'SLA pass done',
  );
}

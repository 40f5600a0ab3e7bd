// The SLA clock of one ticket, as pure functions over its stored state.
//
// Time is counted in business milliseconds of the policy's calendar. Each
// change of the ticket folds the stretch that just ended into `usedMs`, so a
// stored state plus `runningSince` is enough to know the time used at any
// later instant without reading the ticket's history.

import type { TicketStatus } from '../core/types.js';
import type { BusinessCalendar } from '../core/calendar.js';

export type SlaTarget = 'first-response' | 'resolution';
export const SLA_TARGETS: readonly SlaTarget[] = ['first-response', 'resolution'];

export interface TargetClock {
  targetMs: number;
  /** Business time used up to `runningSince`; in all once met or while not running. */
  usedMs: number;
  metAt: number | null;
  /** When the target breaches if the clock keeps running; null while not running or once met. */
  dueAt: number | null;
}

export interface SlaState {
  policy: string;
  /** Start of the stretch the clock has been running since; null while paused or stopped. */
  runningSince: number | null;
  firstResponse: TargetClock;
  resolution: TargetClock & {
    /** 1 for the first resolution; each reopening starts the next. */
    cycle: number;
    startedAt: number;
  };
}

/** The ticket fields the clock depends on. */
export interface TicketFacts {
  status: TicketStatus;
  createdAt: number;
  firstResponseAt: number | null;
  resolvedAt: number | null;
  closedAt: number | null;
}

/** What the clock needs of a policy. */
export interface PolicyClock {
  name: string;
  firstResponseMs: number;
  resolutionMs: number;
  calendar: BusinessCalendar;
}

/**
 * The customer is waiting on us while a ticket is open or on hold (waiting
 * for a part does not stop the customer waiting); `pending` waits on the
 * customer, and resolved or closed tickets wait on nobody.
 */
export function clockRuns(status: TicketStatus): boolean {
  return status === 'open' || status === 'on-hold';
}

function isDone(status: TicketStatus): boolean {
  return status === 'resolved' || status === 'closed';
}

/** Cycle number under which first-response thresholds are recorded. */
export function cycleOf(state: SlaState, target: SlaTarget): number {
  return target === 'first-response' ? 0 : state.resolution.cycle;
}

export function targetClock(state: SlaState, target: SlaTarget): TargetClock {
  return target === 'first-response' ? state.firstResponse : state.resolution;
}

/**
 * The state after a change of the ticket at `now`. `prev` is null for a
 * ticket without SLA state yet; it is then counted from its creation as if
 * its current status had held since (exact for a new ticket).
 */
export function applyChange(prev: SlaState | null, policy: PolicyClock, ticket: TicketFacts, now: number): SlaState {
  const cal = policy.calendar;
  const start = prev ?? {
    policy: policy.name,
    runningSince: ticket.createdAt,
    firstResponse: { targetMs: policy.firstResponseMs, usedMs: 0, metAt: null, dueAt: null },
    resolution: { targetMs: policy.resolutionMs, usedMs: 0, metAt: null, dueAt: null, cycle: 1, startedAt: ticket.createdAt },
  };

  // Fold the stretch that ends now; a target met during it stops counting then.
  const fold = (clock: TargetClock, endsAt: number | null): number => {
    if (start.runningSince === null || clock.metAt !== null) return clock.usedMs;
    const end = Math.min(now, endsAt ?? now);
    return clock.usedMs + cal.businessTimeBetween(new Date(start.runningSince), new Date(end));
  };
  const doneAt = isDone(ticket.status) ? (ticket.resolvedAt ?? ticket.closedAt ?? now) : null;
  const firstResponse: TargetClock = {
    targetMs: policy.firstResponseMs,
    usedMs: fold(start.firstResponse, ticket.firstResponseAt),
    metAt: start.firstResponse.metAt ?? ticket.firstResponseAt,
    dueAt: null,
  };
  let resolution: SlaState['resolution'] = {
    ...start.resolution,
    targetMs: policy.resolutionMs,
    usedMs: fold(start.resolution, doneAt),
    metAt: start.resolution.metAt ?? doneAt,
    dueAt: null,
  };
  if (resolution.metAt !== null && !isDone(ticket.status)) {
    resolution = { ...resolution, usedMs: 0, metAt: null, cycle: resolution.cycle + 1, startedAt: now };
  }

  const runningSince = clockRuns(ticket.status) ? now : null;
  const dueOf = (clock: TargetClock): number | null =>
    runningSince === null || clock.metAt !== null
      ? null
      : cal.addBusinessTime(new Date(runningSince), Math.max(0, clock.targetMs - clock.usedMs)).getTime();
  firstResponse.dueAt = dueOf(firstResponse);
  resolution.dueAt = dueOf(resolution);
  return { policy: policy.name, runningSince, firstResponse, resolution };
}

/** Business time a target has used by `at` (at or after the last change). */
export function usedAt(state: SlaState, target: SlaTarget, at: number, cal: BusinessCalendar): number {
  const clock = targetClock(state, target);
  if (state.runningSince === null || clock.metAt !== null) return clock.usedMs;
  return clock.usedMs + cal.businessTimeBetween(new Date(state.runningSince), new Date(at));
}

export function isBreached(clock: TargetClock, usedMs: number): boolean {
  // Met exactly on time is met; still running at the target is breached.
  return clock.metAt === null ? usedMs >= clock.targetMs : usedMs > clock.targetMs;
}

// ---- thresholds --------------------------------------------------------------

export type MilestoneKind = 'notice' | 'warning' | 'breach';

interface MilestonePoint {
  /** Notice number ('1', '2', ...) or share as written ('80%'); the identity recorded once. */
  threshold: string;
  /** Business time used at which it falls due. */
  atMs: number;
}

/** A threshold of a policy; a staff warning carries its share (0.8 for '80%'), which its mail shows. */
export type PlannedMilestone = MilestonePoint & ({ kind: 'notice' | 'breach' } | { kind: 'warning'; share: number });

/** A point on a target's clock at which something is owed. */
export type Milestone = PlannedMilestone & { target: SlaTarget; cycle: number };

/** The thresholds of a policy for a target of the given length; the same for both targets. */
export type MilestonePlan = (targetMs: number) => PlannedMilestone[];

/** A threshold already acted on (any outcome). */
export interface RecordedMilestone {
  kind: MilestoneKind;
  target: SlaTarget;
  cycle: number;
  threshold: string;
}

export function milestoneKey(m: RecordedMilestone): string {
  return `${m.kind}|${m.target}|${m.cycle}|${m.threshold}`;
}

/**
 * Milestones still owed, per series (kind and target of the current cycle),
 * in order. A threshold below the highest one recorded in its series counts
 * as passed: after a config change adds an earlier one, it is not sent late.
 */
function owed(state: SlaState, plan: MilestonePlan, recorded: readonly RecordedMilestone[]): Milestone[][] {
  const done = new Set(recorded.map(milestoneKey));
  const series: Milestone[][] = [];
  for (const target of SLA_TARGETS) {
    const clock = targetClock(state, target);
    if (clock.metAt !== null) continue;
    const cycle = cycleOf(state, target);
    const byKind = new Map<MilestoneKind, Milestone[]>();
    for (const m of plan(clock.targetMs)) {
      const list = byKind.get(m.kind) ?? [];
      list.push({ ...m, target, cycle });
      byKind.set(m.kind, list);
    }
    for (const list of byKind.values()) {
      list.sort((a, b) => a.atMs - b.atMs);
      let highest = -1;
      list.forEach((m, i) => {
        if (done.has(milestoneKey(m))) highest = i;
      });
      const rest = list.slice(highest + 1).filter((m) => !done.has(milestoneKey(m)));
      if (rest.length > 0) series.push(rest);
    }
  }
  return series;
}

export interface DueMilestones {
  /** The highest reached threshold of each series: the one to act on. */
  act: Milestone[];
  /** Reached thresholds below it, recorded as passed so no stale mail goes out. */
  superseded: Milestone[];
}

/** What has fallen due by `now` and is not yet recorded. */
export function dueMilestones(
  state: SlaState,
  plan: MilestonePlan,
  recorded: readonly RecordedMilestone[],
  now: number,
  cal: BusinessCalendar,
): DueMilestones {
  const result: DueMilestones = { act: [], superseded: [] };
  if (state.runningSince === null) return result;
  const used = new Map(SLA_TARGETS.map((t) => [t, usedAt(state, t, now, cal)]));
  for (const list of owed(state, plan, recorded)) {
    const reached = list.filter((m) => m.atMs <= (used.get(m.target) ?? 0));
    const last = reached.pop();
    if (last) {
      result.act.push(last);
      result.superseded.push(...reached);
    }
  }
  return result;
}

/**
 * The instant the next owed threshold falls due, or null when none can
 * while the clock is stopped. Every running target counts from the same
 * `runningSince`, so the earliest is found in business time and converted
 * to an instant once. An already reached threshold yields `runningSince`.
 */
export function nextDue(
  state: SlaState,
  plan: MilestonePlan,
  recorded: readonly RecordedMilestone[],
  cal: BusinessCalendar,
): number | null {
  if (state.runningSince === null) return null;
  let soonest = Infinity;
  for (const list of owed(state, plan, recorded)) {
    const first = list[0];
    if (first) soonest = Math.min(soonest, Math.max(0, first.atMs - targetClock(state, first.target).usedMs));
  }
  return soonest === Infinity ? null : cal.addBusinessTime(new Date(state.runningSince), soonest).getTime();
}

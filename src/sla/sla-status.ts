// What `ticketd sla status` shows for a ticket: targets, time used and
// left, due times and breaches, read from the stored state at an instant.

import type { TicketStatus } from '../core/types.js';
import type { StoredSla } from './sla-store.js';
import type { BusinessCalendar } from './calendar.js';
import { formatDurationWords } from './duration.js';
import { isBreached, SLA_TARGETS, targetClock, usedAt, type SlaTarget } from './sla-clock.js';

export interface SlaTargetStatus {
  /** The target in words, e.g. "4 hours". */
  target: string;
  targetMs: number;
  /** Business time used and left. */
  usedMs: number;
  leftMs: number;
  used: string;
  left: string;
  running: boolean;
  metAt: string | null;
  due: string | null;
  breached: boolean;
}

export interface SlaTicketStatus {
  ref: string;
  status: TicketStatus;
  /** null when no SLA policy applies to the ticket. */
  policy: string | null;
  firstResponseDue: string | null;
  resolutionDue: string | null;
  breached: SlaTarget[];
  noticesSent: number;
  /** When the engine next looks at the ticket. */
  nextDue: string | null;
  resolutionCycle: number | null;
  targets: Record<SlaTarget, SlaTargetStatus> | null;
}

const iso = (at: number | null): string | null => (at === null ? null : new Date(at).toISOString());

export function describeSla(
  ticket: { ref: string; status: TicketStatus },
  stored: StoredSla | null,
  calendar: BusinessCalendar | null,
  noticesSent: number,
  now: number,
): SlaTicketStatus {
  if (!stored || !calendar) {
    return {
      ref: ticket.ref,
      status: ticket.status,
      policy: stored?.state.policy ?? null,
      firstResponseDue: null,
      resolutionDue: null,
      breached: [],
      noticesSent,
      nextDue: null,
      resolutionCycle: stored?.state.resolution.cycle ?? null,
      targets: null,
    };
  }
  const { state } = stored;
  const describe = (target: SlaTarget): SlaTargetStatus => {
    const clock = targetClock(state, target);
    const used = usedAt(state, target, now, calendar);
    const left = Math.max(0, clock.targetMs - used);
    return {
      target: formatDurationWords(clock.targetMs),
      targetMs: clock.targetMs,
      usedMs: used,
      leftMs: left,
      used: formatDurationWords(used),
      left: formatDurationWords(left),
      running: state.runningSince !== null && clock.metAt === null,
      metAt: iso(clock.metAt),
      due: iso(clock.dueAt),
      breached: isBreached(clock, used),
    };
  };
  const targets = { 'first-response': describe('first-response'), resolution: describe('resolution') };
  return {
    ref: ticket.ref,
    status: ticket.status,
    policy: state.policy,
    firstResponseDue: targets['first-response'].due,
    resolutionDue: targets.resolution.due,
    breached: SLA_TARGETS.filter((t) => targets[t].breached),
    noticesSent,
    nextDue: iso(stored.nextDue),
    resolutionCycle: state.resolution.cycle,
    targets,
  };
}

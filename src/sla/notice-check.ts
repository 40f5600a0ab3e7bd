// Whether a queued delay notice or staff warning still tells the truth. A
// mail can wait in the outbox (an SMTP outage, a long retry) while the ticket
// is answered, paused or closed, or while a change moves its deadline; it is
// checked again just before it is sent, against the ticket as it is now.

import type { TicketStatus } from '../core/types.js';
import { clockRuns, cycleOf, targetClock, usedAt, type RecordedMilestone, type SlaState } from './sla-clock.js';
import type { SlaPolicy } from './sla-policy.js';

export type NoticeVerdict = { send: true } | { send: false; reason: string };

export interface NoticeFacts {
  /** The threshold the mail was queued for. */
  milestone: RecordedMilestone;
  status: TicketStatus;
  /** The ticket's SLA state now; null when no policy applies any more. */
  state: SlaState | null;
  policy: SlaPolicy | null;
  now: number;
}

const SEND: NoticeVerdict = { send: true };

export function checkNotice(f: NoticeFacts): NoticeVerdict {
  const { milestone: m, state, policy } = f;
  if (!clockRuns(f.status)) return { send: false, reason: `ticket is ${f.status}` };
  if (!state || !policy || policy.name !== state.policy) return { send: false, reason: 'the SLA policy of the ticket changed' };
  const clock = targetClock(state, m.target);
  if (clock.metAt !== null) {
    return { send: false, reason: m.target === 'first-response' ? 'the ticket was answered' : 'the ticket was resolved' };
  }
  if (m.cycle !== cycleOf(state, m.target)) return { send: false, reason: 'the ticket was reopened since' };
  const point = policy.plan(clock.targetMs).find((p) => p.kind === m.kind && p.threshold === m.threshold);
  if (!point) return { send: false, reason: 'the policy no longer has this threshold' };
  const used = usedAt(state, m.target, f.now, policy.calendar);
  if (used < point.atMs) return { send: false, reason: 'the deadline moved: the threshold is not reached any more' };
  return SEND;
}

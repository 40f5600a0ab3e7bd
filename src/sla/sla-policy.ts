// SLA policies from the config, compiled once per config: each policy with
// its calendar and its thresholds laid out. Durations, shares and calendars
// come from the config schema already read and built, so a policy that
// cannot run is a config error (with its path) at start or reload, never a
// failure in the middle of taking mail.

import type { Config, MailboxConfig, SlaPolicyConfig } from '../config/load-config.js';
import { ROUND_THE_CLOCK } from '../config/schema.js';
import type { TicketRow } from '../store/store.js';
import { ALWAYS_OPEN_CALENDAR, type BusinessCalendar, CALENDAR_INVALID, CalendarError } from '../core/calendar.js';
import type { MilestonePlan, PolicyClock } from './sla-clock.js';

export interface NoticeRule {
  /** Share of the target at which the first notice of the rule falls due. */
  share: number;
  /** Business time between repeats; null sends one notice. */
  repeatMs: number | null;
  max: number;
}

export interface SlaPolicy extends PolicyClock {
  match: SlaPolicyConfig['match'];
  /** The policy's own staff address; the mailbox's is the fallback. */
  staffAddress: string | null;
  plan: MilestonePlan;
}

export class SlaPolicies {
  private constructor(
    readonly list: readonly SlaPolicy[],
    private readonly mailboxes: readonly MailboxConfig[],
    /** Lower-cased queue name to the policy its `sla` names. */
    private readonly queuePolicies: ReadonlyMap<string, string> = new Map(),
  ) {}

  /** Throws CalendarError (with a `code`) for a policy naming a calendar the config lacks, which the schema refuses first. */
  static compile(config: Config): SlaPolicies {
    const calendarNamed = (name: string): BusinessCalendar => {
      const cal = name === ROUND_THE_CLOCK ? ALWAYS_OPEN_CALENDAR : config.calendars[name];
      if (cal === undefined) throw new CalendarError(CALENDAR_INVALID, `no calendar named "${name}"`);
      return cal;
    };
    return new SlaPolicies(
      config.sla.policies.map((p) => compilePolicy(p, calendarNamed(p.calendar))),
      config.mailboxes,
      new Map((config.queues ?? []).flatMap((q) => (q.sla !== undefined ? [[q.name.toLowerCase(), q.sla] as const] : []))),
    );
  }

  /** The policy of the ticket's queue when that names one; else the first policy whose every `match` field fits, or null. */
  forTicket(ticket: Pick<TicketRow, 'mailbox' | 'priority' | 'queue'>): SlaPolicy | null {
    const ofQueue = ticket.queue ? this.queuePolicies.get(ticket.queue.toLowerCase()) : undefined;
    if (ofQueue !== undefined) return this.named(ofQueue);
    return (
      this.list.find(
        (p) =>
          (p.match.mailbox === undefined || p.match.mailbox === ticket.mailbox) &&
          (p.match.priority === undefined || p.match.priority === ticket.priority),
      ) ?? null
    );
  }

  named(name: string): SlaPolicy | null {
    return this.list.find((p) => p.name === name) ?? null;
  }

  /** Where warnings for a ticket of `mailbox` go under `policy`, or null when nowhere is configured. */
  staffAddressFor(policy: SlaPolicy, mailbox: string): string | null {
    return policy.staffAddress ?? this.mailboxes.find((m) => m.name === mailbox)?.staffAddress ?? null;
  }
}

function compilePolicy(p: SlaPolicyConfig, calendar: BusinessCalendar): SlaPolicy {
  const notices = p.customerNotices.map(
    (n): NoticeRule => ({ share: n.at.share, repeatMs: n.repeatEvery?.ms ?? null, max: n.max }),
  );
  // One warning per threshold as written: "80%" twice is one warning.
  const warnings = [...new Map(p.staffWarnings.map((w) => [w.text, w])).values()];
  const plan: MilestonePlan = (targetMs: number) => [
    ...noticePoints(notices, targetMs).map((atMs, i) => ({ kind: 'notice' as const, threshold: String(i + 1), atMs })),
    ...warnings.map((w) => ({
      kind: 'warning' as const,
      threshold: w.text,
      share: w.share,
      atMs: Math.round(w.share * targetMs),
    })),
    { kind: 'breach' as const, threshold: '100%', atMs: targetMs },
  ];
  return {
    name: p.name,
    match: p.match,
    firstResponseMs: p.firstResponse.ms,
    resolutionMs: p.resolution.ms,
    calendar,
    staffAddress: p.staffAddress ?? null,
    plan,
  };
}

/**
 * The points (business time used) at which customer notices fall due, all
 * rules merged: `{ at: '100%', repeatEvery: '24h', max: 3 }` on a 4h target
 * gives 4h, 28h and 52h. Numbered in this order, so notice n is the n-th.
 */
export function noticePoints(rules: readonly NoticeRule[], targetMs: number): number[] {
  const points = new Set<number>();
  for (const rule of rules) {
    const first = Math.round(rule.share * targetMs);
    const count = rule.repeatMs === null || rule.repeatMs === 0 ? 1 : rule.max;
    for (let k = 0; k < count; k++) points.add(first + k * (rule.repeatMs ?? 0));
  }
  return [...points].sort((a, b) => a - b);
}

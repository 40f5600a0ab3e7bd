// The figures that show where service breaks down, per queue: `ticketd
// report`, and the counts of it that /metrics shows as gauges. Times are
// business time in the calendar of each ticket's SLA policy, counted by the
// same calendar code as the SLA clock; breaches are the SLA clock's own
// verdict. Queries are in service-report.sql.

import { ALWAYS_OPEN_CALENDAR, type BusinessCalendar } from '../core/calendar.js';
import type { TicketStatus } from '../core/types.js';
import type { SqlSession } from '../store/sql-engine.js';
import { isBreached, usedAt, type SlaState, type SlaTarget } from './sla-clock.js';
import type { SlaPolicies } from './sla-policy.js';

export interface ReportWindow {
  /** Epoch ms; null for all time. */
  since: number | null;
  /** Only this queue (any case); null for every queue. */
  queue: string | null;
}

/** A count out of a whole; `share` is null when the whole is empty. */
export interface Share {
  count: number;
  of: number;
  share: number | null;
}

/** Business milliseconds over the tickets that reached the point. */
export interface Durations {
  count: number;
  medianMs: number | null;
  p90Ms: number | null;
}

export interface RatingComment {
  ref: string;
  score: number;
  comment: string;
  at: string;
}

/** What happened in the window, counted: the part of the report /metrics shows too. */
export interface QueueCounts {
  opened: number;
  resolved: number;
  handoffs: number;
  reopened: number;
  ratings: { count: number; sum: number };
  answersUsed: Record<string, number>;
}

export interface QueueReport {
  /** null: tickets in no queue (and, in the report's `total`, every queue). */
  queue: string | null;
  opened: number;
  resolved: number;
  firstResponse: Durations;
  resolution: Durations;
  breached: Record<'firstResponse' | 'resolution', Share>;
  handoffs: {
    total: number;
    /** Per ticket opened in the window. */
    mean: number | null;
    /** Number of handoffs to the tickets that had that many, e.g. {"0": 3, "2": 1}. */
    distribution: Record<string, number>;
  };
  reopened: Share;
  ratings: { count: number; average: number | null; comments: RatingComment[] };
  answersUsed: Record<string, number>;
}

export interface ServiceReport {
  since: string | null;
  until: string;
  queues: QueueReport[];
  total: QueueReport;
}

interface TicketCourse {
  id: number;
  queue: string | null;
  mailbox: string;
  priority: string;
  status: TicketStatus;
  createdAt: number;
  firstResponseAt: number | null;
  resolvedAt: number | null;
  closedAt: number | null;
  policy: string | null;
  runningSince: number | null;
  frTargetMs: number | null;
  frUsedMs: number | null;
  frMetAt: number | null;
  resTargetMs: number | null;
  resUsedMs: number | null;
  resMetAt: number | null;
}

type Grouped = { queue: string | null; n: number };

/** Tickets in no queue are keyed by the empty string, which no queue can be named. */
const keyOf = (queue: string | null) => queue ?? '';

/**
 * The counts per queue (keyed by name; '' for no queue): what /metrics reads
 * at every scrape, so only grouped counts and the events they come from are read.
 */
export async function serviceCounts(db: SqlSession, w: ReportWindow): Promise<Map<string, QueueCounts>> {
  const params = { since: w.since, queue: w.queue };
  const out = new Map<string, QueueCounts>();
  const of = (queue: string | null): QueueCounts => {
    let c = out.get(keyOf(queue));
    if (!c) {
      c = { opened: 0, resolved: 0, handoffs: 0, reopened: 0, ratings: { count: 0, sum: 0 }, answersUsed: {} };
      out.set(keyOf(queue), c);
    }
    return c;
  };
  for (const r of await db.all<Grouped>('report-opened', params)) of(r.queue).opened = r.n;
  for (const r of await db.all<Grouped>('report-resolved', params)) of(r.queue).resolved = r.n;
  for (const r of await db.all<Grouped>('report-handoffs', params)) of(r.queue).handoffs += r.n;
  for (const r of await db.all<Grouped>('report-reopened', params)) of(r.queue).reopened = r.n;
  for (const r of await db.all<{ queue: string | null; score: number }>('report-ratings', params)) {
    const c = of(r.queue);
    c.ratings.count++;
    c.ratings.sum += r.score;
  }
  for (const r of await db.all<{ queue: string | null; detail: string }>('report-answers-used', params)) {
    const name = answerName(r.detail);
    if (name === null) continue;
    const used = of(r.queue).answersUsed;
    used[name] = (used[name] ?? 0) + 1;
  }
  return out;
}

/** The whole report for a window, per queue and in total, as of `now`. */
export async function serviceReport(db: SqlSession, policies: SlaPolicies, w: ReportWindow, now: number): Promise<ServiceReport> {
  const params = { since: w.since, queue: w.queue };
  const counts = await serviceCounts(db, w);
  const courses = await db.all<TicketCourse>('report-tickets', params);
  const handoffsOf = new Map<number, number>();
  for (const r of await db.all<{ ticketId: number; n: number }>('report-handoffs', params)) handoffsOf.set(r.ticketId, r.n);
  const ratings = await db.all<{ ref: string; queue: string | null; score: number; comment: string; at: number }>(
    'report-ratings',
    params,
  );

  // Each ticket is measured once (the calendar walk is the costly part), then counted in its queue and in the total.
  const measured = courses.map((c) => measure(c, handoffsOf.get(c.id) ?? 0, policies, now));
  const keys = new Set([...counts.keys(), ...measured.map((m) => keyOf(m.queue))]);
  const queues = [...keys]
    .sort((a, b) => (a === '' ? 1 : b === '' ? -1 : a.localeCompare(b)))
    .map((key) => {
      const queue = key === '' ? null : (measured.find((m) => keyOf(m.queue) === key)?.queue ?? key);
      return figures(
        queue,
        [counts.get(key)].filter((c) => c !== undefined),
        measured.filter((m) => keyOf(m.queue) === key),
        ratings.filter((r) => keyOf(r.queue) === key),
      );
    });
  return {
    since: w.since === null ? null : new Date(w.since).toISOString(),
    until: new Date(now).toISOString(),
    queues,
    total: figures(null, [...counts.values()], measured, ratings),
  };
}

/** One ticket's course, measured: business times, the SLA clock's verdicts, its handoffs. */
interface Measured {
  queue: string | null;
  firstResponseMs: number | null;
  resolutionMs: number | null;
  /** Whether each target was breached; null for a ticket without an SLA clock. */
  breached: { firstResponse: boolean; resolution: boolean } | null;
  handoffs: number;
}

function measure(c: TicketCourse, handoffs: number, policies: SlaPolicies, now: number): Measured {
  const cal = calendarOf(c, policies);
  const doneAt = c.status === 'resolved' || c.status === 'closed' ? (c.resolvedAt ?? c.closedAt) : null;
  const state = slaStateOf(c);
  return {
    queue: c.queue,
    firstResponseMs:
      c.firstResponseAt === null ? null : cal.businessTimeBetween(new Date(c.createdAt), new Date(c.firstResponseAt)),
    resolutionMs: doneAt === null ? null : cal.businessTimeBetween(new Date(c.createdAt), new Date(doneAt)),
    breached:
      state === null
        ? null
        : {
            firstResponse: breachedAt(state, 'first-response', now, cal),
            resolution: breachedAt(state, 'resolution', now, cal),
          },
    handoffs,
  };
}

function figures(
  queue: string | null,
  counts: QueueCounts[],
  measured: Measured[],
  ratings: { ref: string; score: number; comment: string; at: number }[],
): QueueReport {
  const sum = (f: (c: QueueCounts) => number) => counts.reduce((n, c) => n + f(c), 0);
  const values = (f: (m: Measured) => number | null) => measured.map(f).filter((v) => v !== null);
  const withSla = measured.filter((m) => m.breached !== null);
  const distribution: Record<string, number> = {};
  for (const m of measured) distribution[String(m.handoffs)] = (distribution[String(m.handoffs)] ?? 0) + 1;
  const handoffs = sum((c) => c.handoffs);
  const reopened = sum((c) => c.reopened);
  const ratingCount = sum((c) => c.ratings.count);
  const answersUsed: Record<string, number> = {};
  for (const c of counts) for (const [name, n] of Object.entries(c.answersUsed)) answersUsed[name] = (answersUsed[name] ?? 0) + n;
  return {
    queue,
    opened: sum((c) => c.opened),
    resolved: sum((c) => c.resolved),
    firstResponse: durations(values((m) => m.firstResponseMs)),
    resolution: durations(values((m) => m.resolutionMs)),
    breached: {
      firstResponse: share(withSla.filter((m) => m.breached!.firstResponse).length, withSla.length),
      resolution: share(withSla.filter((m) => m.breached!.resolution).length, withSla.length),
    },
    handoffs: { total: handoffs, mean: measured.length === 0 ? null : handoffs / measured.length, distribution },
    reopened: share(reopened, measured.length),
    ratings: {
      count: ratingCount,
      average: ratingCount === 0 ? null : sum((c) => c.ratings.sum) / ratingCount,
      comments: ratings
        .filter((r) => r.comment.trim() !== '')
        .map((r) => ({ ref: r.ref, score: r.score, comment: r.comment, at: new Date(r.at).toISOString() })),
    },
    answersUsed: Object.fromEntries(Object.entries(answersUsed).sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** The calendar of the ticket's SLA policy: the one its clock runs under, else the one it would get now; round the clock without any. */
function calendarOf(c: TicketCourse, policies: SlaPolicies): BusinessCalendar {
  const policy = (c.policy !== null ? policies.named(c.policy) : null) ?? policies.forTicket(c);
  return policy?.calendar ?? ALWAYS_OPEN_CALENDAR;
}

function slaStateOf(c: TicketCourse): SlaState | null {
  if (c.policy === null) return null;
  return {
    policy: c.policy,
    runningSince: c.runningSince,
    firstResponse: { targetMs: c.frTargetMs!, usedMs: c.frUsedMs!, metAt: c.frMetAt, dueAt: null },
    resolution: {
      targetMs: c.resTargetMs!,
      usedMs: c.resUsedMs!,
      metAt: c.resMetAt,
      dueAt: null,
      cycle: 1,
      startedAt: c.createdAt,
    },
  };
}

/** The SLA clock's verdict on a target as of `now`: met late, or still running past it. */
function breachedAt(state: SlaState, target: SlaTarget, now: number, cal: BusinessCalendar): boolean {
  const clock = target === 'first-response' ? state.firstResponse : state.resolution;
  return isBreached(clock, usedAt(state, target, now, cal));
}

/**
 * Median (the mean of the middle two for an even count) and 90th percentile
 * by nearest rank (the smallest value at least 90% of the others do not exceed).
 */
export function durations(values: readonly number[]): Durations {
  if (values.length === 0) return { count: 0, medianMs: null, p90Ms: null };
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
  return { count: n, medianMs: median, p90Ms: sorted[Math.ceil(0.9 * n) - 1]! };
}

function share(count: number, of: number): Share {
  return { count, of, share: of === 0 ? null : count / of };
}

function answerName(detail: string): string | null {
  try {
    const name = (JSON.parse(detail) as { name?: unknown }).name;
    return typeof name === 'string' && name !== '' ? name : null;
  } catch {
    return null;
  }
}

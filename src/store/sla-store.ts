// The SQLite side of the SLA engine: clock state per ticket, the record of
// thresholds acted on, and the indexed lookups the scheduler lives on.
// Queries are in sla.sql.

import type { RecordedMilestone, SlaState, SlaTarget } from '../sla/sla-clock.js';
import { medianOfMiddle, type History } from '../sla/delay-estimate.js';
import type { SqliteStore } from './sqlite-store.js';

interface StateRow {
  ticketId: number;
  policy: string;
  runningSince: number | null;
  frTargetMs: number;
  frUsedMs: number;
  frMetAt: number | null;
  frDueAt: number | null;
  resTargetMs: number;
  resUsedMs: number;
  resMetAt: number | null;
  resDueAt: number | null;
  resCycle: number;
  resStartedAt: number;
  nextDue: number | null;
}

export type RecordOutcome = 'queued' | 'skipped' | 'superseded' | 'logged' | 'withdrawn';

export interface SlaRecord extends RecordedMilestone {
  outcome: RecordOutcome;
  reason: string | null;
  createdAt: number;
}

export interface StoredSla {
  state: SlaState;
  nextDue: number | null;
}

export class SlaStore {
  constructor(readonly store: SqliteStore) {}

  /** Runs `fn` in a write transaction taken up front, so two processes ticking at once queue nothing twice. */
  write<T>(fn: () => T): T {
    return this.store.db.transaction(fn).immediate();
  }

  get(ticketId: number): StoredSla | null {
    const r = this.store.s('sla-state').get(ticketId) as StateRow | undefined;
    if (!r) return null;
    return {
      nextDue: r.nextDue,
      state: {
        policy: r.policy,
        runningSince: r.runningSince,
        firstResponse: { targetMs: r.frTargetMs, usedMs: r.frUsedMs, metAt: r.frMetAt, dueAt: r.frDueAt },
        resolution: {
          targetMs: r.resTargetMs,
          usedMs: r.resUsedMs,
          metAt: r.resMetAt,
          dueAt: r.resDueAt,
          cycle: r.resCycle,
          startedAt: r.resStartedAt,
        },
      },
    };
  }

  save(ticketId: number, state: SlaState, nextDue: number | null, now: number): void {
    const fr = state.firstResponse;
    const res = state.resolution;
    this.store.s('sla-save').run({
      ticketId,
      policy: state.policy,
      runningSince: state.runningSince,
      frTargetMs: fr.targetMs,
      frUsedMs: fr.usedMs,
      frMetAt: fr.metAt,
      frDueAt: fr.dueAt,
      resTargetMs: res.targetMs,
      resUsedMs: res.usedMs,
      resMetAt: res.metAt,
      resDueAt: res.dueAt,
      resCycle: res.cycle,
      resStartedAt: res.startedAt,
      nextDue,
      now,
    });
  }

  remove(ticketId: number): void {
    this.store.s('sla-remove').run(ticketId);
  }

  setNextDue(ticketId: number, nextDue: number | null, now: number): void {
    this.store.s('sla-set-next-due').run({ ticketId, nextDue, now });
  }

  /** Tickets whose next threshold is due by `now`, soonest first: an index range, nothing else is read. */
  dueTickets(now: number, limit: number): number[] {
    return (this.store.s('sla-due').all({ now, limit }) as { ticketId: number }[]).map((r) => r.ticketId);
  }

  /** The earliest next-due instant of all tickets: one index probe. */
  nextDue(): number | null {
    return (this.store.s('sla-next-due').get() as { due: number | null }).due;
  }

  records(ticketId: number): SlaRecord[] {
    return this.store.s('sla-records').all(ticketId) as SlaRecord[];
  }

  /** Records a threshold; false when it was recorded before (nothing may be queued then). */
  record(ticketId: number, m: RecordedMilestone, outcome: RecordOutcome, reason: string | null, now: number): boolean {
    const { kind, target, cycle, threshold } = m;
    return this.store.s('sla-insert-record').run({ ticketId, kind, target, cycle, threshold, outcome, reason, now }).changes === 1;
  }

  /** The threshold a queued mail (its message row) was sent for; null for any other mail. */
  recordOfMessage(messageRow: number): (RecordedMilestone & { ticketId: number; outcome: RecordOutcome }) | null {
    return (this.store.s('sla-record-by-message').get(messageRow) as (RecordedMilestone & { ticketId: number; outcome: RecordOutcome }) | undefined) ?? null;
  }

  /**
   * Takes a queued mail out of the outbox and marks its threshold withdrawn;
   * false when the row was no longer pending (sent or withdrawn by another
   * worker), in which case nothing changed.
   */
  withdraw(outboxId: number, messageRow: number, reason: string, now: number): boolean {
    if (this.store.s('sla-withdraw-outbox').run({ outboxId, reason, now }).changes !== 1) return false;
    this.store.s('sla-withdraw-record').run({ messageRow, reason });
    return true;
  }

  linkMessage(ticketId: number, m: RecordedMilestone, messageRow: number): void {
    const { kind, target, cycle, threshold } = m;
    this.store.s('sla-record-message').run({ ticketId, kind, target, cycle, threshold, messageRow });
  }

  noticesQueued(ticketId: number): number {
    return (this.store.s('sla-notices-queued').get(ticketId) as { n: number }).n;
  }

  /** The acknowledgement was withheld (auto-generated mail, rate limit, suppressed sender). */
  ackSuppressed(ticketId: number): boolean {
    return this.store.s('sla-ack-suppressed').get(ticketId) !== undefined;
  }

  isSuppressed(address: string): boolean {
    return this.store.s('is-suppressed').get(address.toLowerCase()) !== undefined;
  }

  /** Message-IDs of the ticket's conversation, oldest first, for In-Reply-To and References. */
  threadIds(ticketId: number): string[] {
    return this.store.threadIds(ticketId);
  }

  /** Business time to meet `target` for tickets of `policy` met in (since, until]. */
  history(policy: string, target: SlaTarget, since: number, until: number): History {
    const prefix = target === 'first-response' ? 'sla-fr' : 'sla-res';
    const samples = (this.store.s(`${prefix}-sample-count`).get({ policy, since, until }) as { n: number }).n;
    if (samples === 0) return { samples, medianMs: null };
    const middle = this.store.s(`${prefix}-sample-middle`).all({
      policy,
      since,
      until,
      take: samples % 2 === 0 ? 2 : 1,
      skip: Math.floor((samples - 1) / 2),
    }) as { ms: number }[];
    return { samples, medianMs: medianOfMiddle(middle.map((r) => r.ms)) };
  }

  /** Tickets with SLA state that are still open, pending or on hold, next due first. */
  liveTickets(): number[] {
    return (this.store.s('sla-live-tickets').all() as { ticketId: number }[]).map((r) => r.ticketId);
  }
}

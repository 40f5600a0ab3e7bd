// The SLA engine's storage, over whatever session it runs in (the engine,
// or the transaction of a ticket change or a tick): clock state per ticket,
// the record of thresholds acted on, and the indexed lookups the scheduler
// lives on. Queries are in sla.sql.

import type { SqlSession } from '../store/sql-engine.js';
import { TicketRecords } from '../store/ticket-records.js';
import { medianOfMiddle, type History } from './delay-estimate.js';
import type { RecordedMilestone, SlaState, SlaTarget } from './sla-clock.js';

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
  /** The ticket's own records (rows, events, outbox, status links) in the same session. */
  readonly tickets: TicketRecords;

  constructor(private readonly db: SqlSession) {
    this.tickets = new TicketRecords(db);
  }

  async get(ticketId: number): Promise<StoredSla | null> {
    const r = await this.db.get<StateRow>('sla-state', [ticketId]);
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

  async save(ticketId: number, state: SlaState, nextDue: number | null, now: number): Promise<void> {
    const fr = state.firstResponse;
    const res = state.resolution;
    await this.db.run('sla-save', {
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

  async remove(ticketId: number): Promise<void> {
    await this.db.run('sla-remove', [ticketId]);
  }

  async setNextDue(ticketId: number, nextDue: number | null, now: number): Promise<void> {
    await this.db.run('sla-set-next-due', { ticketId, nextDue, now });
  }

  /** Tickets whose next threshold is due by `now`, soonest first: an index range, nothing else is read. */
  async dueTickets(now: number, limit: number): Promise<number[]> {
    return (await this.db.all<{ ticketId: number }>('sla-due', { now, limit })).map((r) => r.ticketId);
  }

  /** The earliest next-due instant of all tickets: one index probe. */
  async nextDue(): Promise<number | null> {
    return (await this.db.get<{ due: number | null }>('sla-next-due'))?.due ?? null;
  }

  records(ticketId: number): Promise<SlaRecord[]> {
    return this.db.all<SlaRecord>('sla-records', [ticketId]);
  }

  /** Records a threshold; false when it was recorded before (nothing may be queued then). */
  async record(
    ticketId: number,
    m: RecordedMilestone,
    outcome: RecordOutcome,
    reason: string | null,
    now: number,
  ): Promise<boolean> {
    const { kind, target, cycle, threshold } = m;
    return (
      (await this.db.run('sla-insert-record', { ticketId, kind, target, cycle, threshold, outcome, reason, now })).changes === 1
    );
  }

  /** The threshold a queued mail (its message row) was sent for; null for any other mail. */
  async recordOfMessage(messageRow: number): Promise<(RecordedMilestone & { ticketId: number; outcome: RecordOutcome }) | null> {
    return (
      (await this.db.get<RecordedMilestone & { ticketId: number; outcome: RecordOutcome }>('sla-record-by-message', [
        messageRow,
      ])) ?? null
    );
  }

  /**
   * Takes a queued mail out of the outbox and marks its threshold withdrawn;
   * false when the row was no longer pending (sent or withdrawn by another
   * worker), in which case nothing changed.
   */
  async withdraw(outboxId: number, messageRow: number, reason: string, now: number): Promise<boolean> {
    if ((await this.db.run('sla-withdraw-outbox', { outboxId, reason, now })).changes !== 1) return false;
    await this.db.run('sla-withdraw-record', { messageRow, reason });
    return true;
  }

  async linkMessage(ticketId: number, m: RecordedMilestone, messageRow: number): Promise<void> {
    const { kind, target, cycle, threshold } = m;
    await this.db.run('sla-record-message', { ticketId, kind, target, cycle, threshold, messageRow });
  }

  async noticesQueued(ticketId: number): Promise<number> {
    return (await this.db.get<{ n: number }>('sla-notices-queued', [ticketId]))!.n;
  }

  /** The acknowledgement was withheld (auto-generated mail, rate limit, suppressed sender). */
  async ackSuppressed(ticketId: number): Promise<boolean> {
    return (await this.db.get('sla-ack-suppressed', [ticketId])) !== undefined;
  }

  async isSuppressed(address: string): Promise<boolean> {
    return (await this.db.get('is-suppressed', [address.toLowerCase()])) !== undefined;
  }

  /** Business time to meet `target` for tickets of `policy` met in (since, until]. */
  async history(policy: string, target: SlaTarget, since: number, until: number): Promise<History> {
    const prefix = target === 'first-response' ? 'sla-fr' : 'sla-res';
    const samples = (await this.db.get<{ n: number }>(`${prefix}-sample-count`, { policy, since, until }))!.n;
    if (samples === 0) return { samples, medianMs: null };
    const middle = await this.db.all<{ ms: number }>(`${prefix}-sample-middle`, {
      policy,
      since,
      until,
      take: samples % 2 === 0 ? 2 : 1,
      skip: Math.floor((samples - 1) / 2),
    });
    return { samples, medianMs: medianOfMiddle(middle.map((r) => r.ms)) };
  }

  /** Tickets with SLA state that are still open, pending or on hold, next due first. */
  async liveTickets(): Promise<number[]> {
    return (await this.db.all<{ ticketId: number }>('sla-live-tickets')).map((r) => r.ticketId);
  }
}

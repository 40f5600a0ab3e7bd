import type { Clock } from '../core/clock.js';
import type { StatusPageStorage } from './status-page-store.js';
import type { OutboxCounts } from '../store/store.js';

/** More mail than this waiting to go out means sending has stalled. */
export const OUTBOX_BACKLOG_LIMIT = 1000;

/** A mailbox's IMAP worker, as far as readiness looks at it. */
export interface MailboxProbe {
  name: string;
  pollIntervalMs: number;
  health(): { connected: boolean; lastPollAt: number | null };
}

export interface ReadinessDeps {
  statusStore: Pick<StatusPageStorage, 'probeWrite'>;
  outboxCounts(): Promise<OutboxCounts>;
  mailboxes: MailboxProbe[];
  clock: Clock;
  /** With several nodes on one database: this node and the mailboxes it holds (and so watches). */
  node?: { name: string; holds: string[] } | undefined;
}

/**
 * The `/readyz` body. Error texts are left out on purpose: the route sits on
 * the public listener, and host names or credentials problems are for the log.
 */
export interface Readiness {
  ok: boolean;
  /** `error` is SQLite's error code, e.g. SQLITE_BUSY. */
  database: { ok: boolean; error: string | null };
  mailboxes: { name: string; ok: boolean; connected: boolean; lastPollAt: string | null }[];
  /** Counts are null when the database could not be read. */
  outbox: { ok: boolean; pending: number | null; failed: number | null; limit: number };
  /** Only with PostgreSQL: which node answered, and the mailboxes it holds; `mailboxes` lists only those. */
  node?: { name: string; holds: string[] };
}

/** Ready when the database takes writes, every mailbox is connected or polled within two intervals, and the outbox keeps up. */
export async function checkReadiness(d: ReadinessDeps): Promise<Readiness> {
  const now = d.clock.now().getTime();
  const probe = await d.statusStore.probeWrite();
  const database = { ok: probe.ok, error: probe.ok ? null : probe.code };
  const mailboxes = d.mailboxes.map((m) => {
    const h = m.health();
    const polledRecently = h.lastPollAt !== null && now - h.lastPollAt <= 2 * m.pollIntervalMs;
    return {
      name: m.name,
      ok: h.connected || polledRecently,
      connected: h.connected,
      lastPollAt: h.lastPollAt === null ? null : new Date(h.lastPollAt).toISOString(),
    };
  });
  const counts = await d.outboxCounts().catch(() => null);
  const outbox = {
    ok: counts !== null && counts.pending < OUTBOX_BACKLOG_LIMIT,
    pending: counts?.pending ?? null,
    failed: counts?.failed ?? null,
    limit: OUTBOX_BACKLOG_LIMIT,
  };
  const ok = database.ok && outbox.ok && mailboxes.every((m) => m.ok);
  return d.node === undefined ? { ok, database, mailboxes, outbox } : { ok, database, mailboxes, outbox, node: d.node };
}

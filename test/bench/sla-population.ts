// Fills a ticketd database with open tickets for the SLA scale test and
// benchmark. Tickets go in through the store's own insert; the first ticket
// of each creation instant goes through the SLA change hook, and the others
// of that instant get a copy of its state (same instant and policy, same
// clock), because calendar arithmetic would otherwise dominate the setup.

import type { Runtime } from '../../src/daemon/runtime.js';
import type { StoredSla } from '../../src/store/sla-store.js';

const BATCH = 20_000;

/**
 * Inserts `count` open tickets of mailbox `support`, created at `createdAt(i)`,
 * in transactions of BATCH tickets. Returns the ids in insertion order.
 */
export function populate(runtime: Runtime, count: number, createdAt: (i: number) => number, refPrefix = 'ACME'): number[] {
  const store = runtime.store;
  const insert = store.s('insert-ticket');
  const ids: number[] = [];
  const computed = new Map<number, StoredSla>();
  for (let start = 0; start < count; start += BATCH) {
    store.db.transaction(() => {
      for (let i = start; i < Math.min(count, start + BATCH); i++) {
        const now = createdAt(i);
        const id = Number(
          insert.run({
            ref: `${refPrefix}-${i.toString(36).toUpperCase().padStart(6, '0')}`,
            mailbox: 'support',
            subject: `Request ${i}`,
            requester: `customer${i}@customer.example`,
            requesterName: '',
            replyTo: `customer${i}@customer.example`,
            language: null,
            linkedTo: null,
            now,
          }).lastInsertRowid,
        );
        const same = computed.get(now);
        if (same) {
          runtime.sla.sla.save(id, same.state, same.nextDue, now);
        } else {
          store.afterTicketChange?.(id, 'created', now);
          const stored = runtime.sla.sla.get(id);
          if (stored) computed.set(now, stored);
        }
        ids.push(id);
      }
    })();
  }
  return ids;
}

/** Total rows inserted, updated or deleted on the connection so far (SQLite's total_changes()). */
export function totalChanges(runtime: Runtime): number {
  return (runtime.store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
}

/** Records the named queries run while `fn` runs. */
export function namedQueriesRun<T>(runtime: Runtime, fn: () => T): { result: T; queries: string[] } {
  const store = runtime.store;
  const original = store.s.bind(store);
  const queries: string[] = [];
  store.s = (name: string) => {
    queries.push(name);
    return original(name);
  };
  try {
    return { result: fn(), queries };
  } finally {
    store.s = original;
  }
}

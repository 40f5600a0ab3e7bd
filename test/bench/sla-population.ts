// Fills a ticketd database with open tickets for the SLA scale test and
// benchmark. Tickets go in through the store's own insert; the first ticket
// of each creation instant goes through the SLA change hook, and the others
// of that instant get a copy of its state (same instant and policy, same
// clock), because calendar arithmetic would otherwise dominate the setup.

import type { Runtime } from '../../src/daemon/runtime.js';
import { SlaStore, type StoredSla } from '../../src/sla/sla-store.js';
import type { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { dbOf, engineOf } from '../harness/sqlite-store.js';

const BATCH = 20_000;

/**
 * Inserts `count` open tickets of mailbox `support`, created at `createdAt(i)`,
 * in transactions of BATCH tickets. Returns the ids in insertion order.
 */
export async function populate(
  runtime: Runtime,
  count: number,
  createdAt: (i: number) => number,
  refPrefix = 'ACME',
): Promise<number[]> {
  const ids: number[] = [];
  const computed = new Map<number, StoredSla>();
  for (let start = 0; start < count; start += BATCH) {
    await engineOf(runtime).transaction(async (tx) => {
      const sla = new SlaStore(tx);
      for (let i = start; i < Math.min(count, start + BATCH); i++) {
        const now = createdAt(i);
        const { id } = (await tx.get<{ id: number }>('insert-ticket', {
          ref: `${refPrefix}-${i.toString(36).toUpperCase().padStart(6, '0')}`,
          mailbox: 'support',
          subject: `Request ${i}`,
          requester: `customer${i}@customer.example`,
          requesterName: '',
          replyTo: `customer${i}@customer.example`,
          language: null,
          linkedTo: null,
          now,
        }))!;
        const same = computed.get(now);
        if (same) {
          await sla.save(id, same.state, same.nextDue, now);
        } else {
          await runtime.sla.onTicketChange(tx, id, now);
          const stored = await sla.get(id);
          if (stored) computed.set(now, stored);
        }
        ids.push(id);
      }
    });
  }
  return ids;
}

/** Total rows inserted, updated or deleted on the connection so far (SQLite's total_changes()). */
export function totalChanges(runtime: Runtime): number {
  return (dbOf(runtime).prepare('SELECT total_changes() AS n').get() as { n: number }).n;
}

/** Records the named queries run while `fn` runs. */
export async function namedQueriesRun<T>(runtime: Runtime, fn: () => Promise<T>): Promise<{ result: T; queries: string[] }> {
  const engine = engineOf(runtime) as SqliteEngine;
  // biome-ignore lint/complexity/useLiteralKeys: the engine's private statement cache, reached on purpose to count the queries
  const original = engine['statement'].bind(engine);
  const queries: string[] = [];
  // biome-ignore lint/complexity/useLiteralKeys: the engine's private statement cache, reached on purpose to count the queries
  engine['statement'] = (name: string) => {
    queries.push(name);
    return original(name);
  };
  try {
    return { result: await fn(), queries };
  } finally {
    // biome-ignore lint/complexity/useLiteralKeys: the engine's private statement cache, reached on purpose to count the queries
    engine['statement'] = original;
  }
}

// The intake policy's callbacks run inside the intake transaction and are
// pure: what they need from the database (the SLA history behind the
// acknowledgement's estimate) is read before the transaction begins.

import { afterEach, expect, it } from 'vitest';
import type { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { engineOf } from '../harness/sqlite-store.js';
import { openDesk, outboxOf, type SlaDesk } from './sla-fixture.js';

let desk: SlaDesk | null = null;
afterEach(async () => {
  await desk?.close();
  desk = null;
});

it('composes the acknowledgement, estimate included, without a query inside the commit', async () => {
  desk = await openDesk('2026-03-02T09:00:00Z');
  const engine = engineOf(desk.runtime) as SqliteEngine;
  // biome-ignore lint/complexity/useLiteralKeys: the engine's private statement cache, reached on purpose to count the queries
  const prepare = engine['statement'].bind(engine);
  const run: string[] = [];
  const duringCompose: string[] = [];
  let composing = false;
  // biome-ignore lint/complexity/useLiteralKeys: the engine's private statement cache, reached on purpose to count the queries
  engine['statement'] = (name: string) => {
    (composing ? duringCompose : run).push(name);
    return prepare(name);
  };
  const policyOf = desk.runtime.pipeline.policy;
  desk.runtime.pipeline.policy = async () => {
    const p = await policyOf();
    return {
      ...p,
      composeAck: (req) => {
        composing = true;
        try {
          return p.composeAck(req);
        } finally {
          composing = false;
        }
      },
    };
  };
  const ref = await desk.receive({ subject: 'Printer on fire', messageId: 'pure@customer.example' });
  expect(duringCompose).toEqual([]);
  // The history was read, before the intake transaction.
  expect(run.indexOf('sla-fr-sample-count')).toBeLessThan(run.indexOf('insert-ticket'));
  expect(run).toContain('sla-fr-sample-count');
  // The estimate still reaches the acknowledgement: four business hours from 10:00 Berlin.
  expect(outboxOf(desk, ref)[0]!.text).toMatch(/4 hours/);
});

// Marking a mail sent, and then taking its status links out of the stored
// copy, run once per outgoing mail, in the outbox's hot path. A query there
// that scans a whole table makes every send cost more the more tickets the
// database holds, and the drain rate falls as the database grows. This records
// what the sent mark and its redaction run and checks SQLite's plan of each:
// index look-ups only.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import type { Runtime } from '../../src/daemon/runtime.js';
import { takeMessages } from '../../src/pipeline/take-messages.js';
import { loadNamedQueries } from '../../src/store/named-queries.js';
import { SqlOutboxQueue } from '../../src/store/outbox-queue.js';
import type { SqlEngine, SqlParams, SqlSession, SqlTransaction } from '../../src/store/sql-engine.js';
import { openFileRuntime, type FileRuntime } from '../harness/file-runtime.js';
import { dbOf, engineOf } from '../harness/sqlite-store.js';

let installation: FileRuntime;
let runtime: Runtime;
const clock = fixedClock(new Date('2026-03-02T10:00:00Z'));

beforeAll(async () => {
  installation = await openFileRuntime(clock, 'ticketd-sent-plans-');
  runtime = installation.runtime;
});
afterAll(async () => {
  await installation?.close();
});

type Ran = { name: string; params: SqlParams | undefined };

/** A session that writes down every named query it runs. */
function recording<S extends SqlSession>(session: S, ran: Ran[]): S {
  return new Proxy(session, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop === 'all' || prop === 'get' || prop === 'run')
        return (name: string, params?: SqlParams) => {
          ran.push({ name, params });
          return value.call(target, name, params);
        };
      if (prop === 'transaction' || prop === 'snapshot' || prop === 'savepoint')
        return (body: (tx: SqlTransaction) => Promise<unknown>) =>
          value.call(target, (tx: SqlTransaction) => body(recording(tx, ran)));
      return value.bind(target);
    },
  });
}

function plan(name: string, params: SqlParams | undefined): string {
  const sql = loadNamedQueries('sqlite').get(name)!;
  const stmt = dbOf(runtime).prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (params === undefined ? stmt.all() : Array.isArray(params) ? stmt.all(...params) : stmt.all(params)) as {
    detail: string;
  }[];
  return rows.map((r) => r.detail).join('; ');
}

describe('marking a mail sent', () => {
  it('reads and writes through indexes only, so its cost does not grow with the number of tickets', async () => {
    const raw = (i: number) =>
      Buffer.from(
        [
          `From: Customer ${i} <c${i}@customer.example>`,
          'To: support@example.com',
          `Subject: Question ${i}`,
          `Message-ID: <q${i}@customer.example>`,
          '',
          'Hello.',
          '',
        ].join('\r\n'),
      );
    const results = await takeMessages(
      runtime.pipeline,
      [1, 2, 3].map((i) => ({ origin: { via: 'pipe' as const, mailbox: 'support' }, raw: raw(i) })),
    );
    expect(results.every((r) => r.ref !== undefined)).toBe(true);

    const ran: Ran[] = [];
    const queue = new SqlOutboxQueue(recording(engineOf(runtime), ran) as SqlEngine);
    const now = clock.now().getTime();
    const jobs = await queue.claimOutbox(now, 10, 60_000);
    expect(jobs).toHaveLength(3);
    ran.length = 0;
    await queue.markOutboxSent(
      jobs.map((j) => j.id),
      now,
    );
    // the links are taken out by the redaction pass that follows the marks
    expect(await queue.redactSentMail(10)).toBe(3);

    // The mark and its redaction did their whole job: the links in the stored acknowledgement are gone.
    const ref = results[0]!.ref!;
    const ack = (await runtime.store.ticketDetail(ref))!.messages.find((m) => m.kind === 'ack')!;
    expect(ack.text).toContain('https://help.example.com/t/[redacted]');

    expect(ran.length).toBeGreaterThan(0);
    const scans = ran
      .map((r) => ({ name: r.name, plan: plan(r.name, r.params) }))
      .filter((p) => /\bSCAN \w+(?!\w| USING)/.test(p.plan));
    expect(scans).toEqual([]);
  });
});

// The outbox against the real capturing SMTP server: pooled connections,
// concurrent sends, wakes during a send, fresh mail ahead of a backlog,
// refused logins, operator retries and the send deadline.

import { dbOf } from '../harness/sqlite-store.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { createLogger, type Logger } from '../../src/core/logger.js';
import type { OutboxClaims } from '../../src/outbox/outbox-claims.js';
import { OutboxWorker } from '../../src/outbox/outbox-worker.js';
import { Duration } from '../../src/core/duration.js';
import { RetrySchedule } from '../../src/outbox/retry-schedule.js';
import { ingestMessages } from '../../src/sources/pipe/ingest.js';
import { customerMail, startTicketdEnv, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const MAX_CONNECTIONS = 3;

let env: TicketdEnv;
let td: InProcess | null = null;
let dbSeq = 0;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterAll(async () => {
  await env?.stop();
});
afterEach(async () => {
  await td?.close();
  td = null;
  env.smtp.setAuthFailure(null);
  env.smtp.setStallData(false);
  env.smtp.setFailureMode(null);
  env.smtp.clear();
});

/** A worker over the test's database that sends only when woken (its poll is a minute), MAX_CONNECTIONS at a time. */
function workerOf(t: InProcess, o: { store?: OutboxClaims; batchSize?: number; maxInDoubt?: number } = {}): OutboxWorker {
  return new OutboxWorker({
    store: o.store ?? t.runtime.store,
    mailerFor: (m) => t.runtime.mailerFor(m),
    schedule: new RetrySchedule([Duration.parse('1m')]),
    logger: createLogger({ level: 'silent' }),
    clock: t.clock,
    pollIntervalMs: 60_000,
    batchSize: o.batchSize ?? 50,
    concurrency: () => MAX_CONNECTIONS,
    ...(o.maxInDoubt === undefined ? {} : { maxInDoubt: () => o.maxInDoubt! }),
    leaseMs: 30_000,
  });
}

/** A fresh database per test, a pool of MAX_CONNECTIONS, and whatever else the test needs. */
async function open(patch?: (cfg: Record<string, any>) => void, opts: { logger?: Logger } = {}): Promise<InProcess> {
  env.writeConfig((c) => {
    c.database = `./data/outbox-${++dbSeq}.sqlite`;
    c.smtp.maxConnections = MAX_CONNECTIONS;
    patch?.(c);
  });
  td = await env.open(opts);
  return td;
}

/** Queues one acknowledgement per new ticket, each for its own customer (the per-sender limits stay out of it). */
async function queueAcks(t: InProcess, n: number, tag: string): Promise<void> {
  const mails = Array.from({ length: n }, (_, i) =>
    Buffer.from(
      customerMail({
        from: `customer-${tag}-${i}@customer.example`,
        subject: `${tag} ${i}`,
        messageId: `${tag}-${i}@customer.example`,
      }),
    ),
  );
  // Committed in slices, as a backlog would arrive.
  for (let i = 0; i < mails.length; i += 100) await ingestMessages(t.runtime.pipeline, 'support', mails.slice(i, i + 100));
}

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function logCollector(): { logger: Logger; entries: Record<string, any>[] } {
  const entries: Record<string, any>[] = [];
  const logger = createLogger({ level: 'info', dest: { write: (line: string) => void entries.push(JSON.parse(line)) } });
  return { logger, entries };
}

describe('outbox', () => {
  it('sends many mails over a few pooled connections', async () => {
    const t = await open();
    await queueAcks(t, 60, 'pool');
    t.outbox.start();
    try {
      await env.smtp.waitFor(60, 30_000);
    } finally {
      await t.outbox.stop();
    }
    expect(env.smtp.connections).toBeGreaterThan(0);
    expect(env.smtp.connections).toBeLessThanOrEqual(MAX_CONNECTIONS);
    expect(await t.runtime.store.outboxCounts()).toMatchObject({ pending: 0, failed: 0, sent: 60 });
  });

  it('marks a send sent while the mark of an earlier one is still committing', async () => {
    const t = await open();
    const store = t.runtime.store;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = 0;
    // the first mark's commit stalls (a slow disk, a busy database); every later mark must not wait for it
    const claims: OutboxClaims = {
      claimOutbox: (...args) => store.claimOutbox(...args),
      saveOutboundRaw: (...args) => store.saveOutboundRaw(...args),
      markOutboxSent: async (ids, now) => {
        if (held++ === 0) await gate;
        return store.markOutboxSent(ids, now);
      },
      redactSentMail: (...args) => store.redactSentMail(...args),
      releaseOutbox: (...args) => store.releaseOutbox(...args),
      markOutboxRetry: (...args) => store.markOutboxRetry(...args),
      markOutboxFailed: (...args) => store.markOutboxFailed(...args),
    };
    const worker = workerOf(t, { store: claims });
    worker.start();
    try {
      await queueAcks(t, 1, 'first');
      worker.wake();
      await until(() => held === 1);
      await queueAcks(t, 1, 'second');
      worker.wake();
      const deadline = Date.now() + 20_000;
      while ((await store.outboxCounts()).sent < 1) {
        if (Date.now() > deadline) throw new Error("the second mark waited for the first one's commit");
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await store.outboxCounts()).toMatchObject({ pending: 1, sent: 1 });
    } finally {
      release();
      await worker.stop();
    }
  });

  it('lets one mail at a time be accepted and not yet marked sent, so a kill can send only that one again', async () => {
    const t = await open();
    await queueAcks(t, 6, 'doubt');
    const sentRows = dbOf(t.runtime.store).prepare("SELECT count(*) AS n FROM outbox WHERE status = 'sent'");
    // Each end the server receives finds every mail whose end came before already marked sent.
    const unmarkedAtEnd: number[] = [];
    env.smtp.onMessageEnd(() => {
      unmarkedAtEnd.push(unmarkedAtEnd.length - (sentRows.get() as { n: number }).n);
    });
    // a server slow to answer a message's end (it writes its queue file first)
    env.smtp.setAnswerDelay(150);
    const worker = workerOf(t, { maxInDoubt: t.runtime.config.outbox.maxInDoubt });
    worker.start();
    try {
      await env.smtp.waitFor(6, 20_000);
    } finally {
      await worker.stop();
      env.smtp.onMessageEnd(null);
      env.smtp.setAnswerDelay(0);
    }
    expect(unmarkedAtEnd).toEqual([0, 0, 0, 0, 0, 0]);
    expect(env.smtp.mostAwaitingAnswer).toBe(1);
    expect(t.runtime.config.outbox.maxInDoubt).toBe(1);
    // the bodies still travel over the pool's connections side by side
    expect(env.smtp.connections).toBe(MAX_CONNECTIONS);
  });

  it('keeps a wake that arrives while a send is in progress', async () => {
    const t = await open((c) => (c.smtp.sendTimeoutMs = 5000));
    // Polling alone would take a minute: only the wake can make the second mail go out in time.
    const worker = workerOf(t);
    worker.start();
    try {
      // The first send hangs until its deadline, so the worker is busy with it for a while.
      env.smtp.setStallData(true);
      await queueAcks(t, 1, 'first');
      worker.wake();
      await until(() => env.smtp.stalled === 1);
      await queueAcks(t, 1, 'second');
      env.smtp.setStallData(false);
      worker.wake();
      const [got] = await env.smtp.waitFor(1, 20_000);
      expect(got!.envelope.to).toEqual(['customer-second-0@customer.example']);
    } finally {
      await worker.stop();
    }
  });

  it('sends a fresh acknowledgement before a backlog of older ones', async () => {
    const t = await open();
    await queueAcks(t, 200, 'backlog');
    await queueAcks(t, 1, 'fresh');
    t.outbox.start();
    try {
      await env.smtp.waitFor(201, 60_000);
    } finally {
      await t.outbox.stop();
    }
    const order = env.smtp.messages.map((m) => m.envelope.to[0]);
    // In the first claim, so among the first sends at once; the old order put it last.
    expect(order.indexOf('customer-fresh-0@customer.example')).toBeLessThan(MAX_CONNECTIONS * 2);
    // And the backlog still went out oldest first around it.
    const backlog = order.filter((a) => a !== 'customer-fresh-0@customer.example');
    expect(backlog.indexOf('customer-backlog-0@customer.example')).toBeLessThan(MAX_CONNECTIONS * 2);
  });

  it('sends mail woken with wakeFirst before the rows it had already claimed', async () => {
    const t = await open((c) => (c.smtp.sendTimeoutMs = 1500));
    const worker = workerOf(t, { batchSize: 20 });
    // A backlog is claimed and its first sends hang, so the rest of the claim waits in the worker's queue.
    env.smtp.setStallData(true);
    await queueAcks(t, 30, 'claimed');
    worker.start();
    try {
      await until(() => env.smtp.stalled === MAX_CONNECTIONS);
      // Mail taken ahead of the backlog queues its acknowledgement now.
      await queueAcks(t, 1, 'ahead');
      worker.wakeFirst(1);
      // Claimed (leased) while the hanging sends still hold every connection.
      const leased = () =>
        (
          dbOf(t.runtime.store).prepare('SELECT next_attempt_at AS at FROM outbox ORDER BY id DESC LIMIT 1').get() as {
            at: number;
          }
        ).at;
      await until(() => leased() > t.clock.now().getTime());
      env.smtp.setStallData(false);
      const [first] = await env.smtp.waitFor(1, 20_000);
      expect(first!.envelope.to).toEqual(['customer-ahead-0@customer.example']);
      // Everything but the sends that hung (retried in a minute) goes out, once each, the rows that made room included.
      await env.smtp.waitFor(31 - MAX_CONNECTIONS, 30_000);
    } finally {
      await worker.stop();
    }
    const sent = env.smtp.messages.map((m) => m.envelope.to[0]);
    expect(sent).toHaveLength(31 - MAX_CONNECTIONS);
    expect(new Set(sent).size).toBe(sent.length);
  });

  it('retries after a refused login (535) and delivers once the login works, without an operator', async () => {
    const { logger, entries } = logCollector();
    const t = await open((c) => (c.smtp.auth = { user: 'ticketd', pass: 'secret' }), { logger });
    env.smtp.setAuthFailure(535);
    await queueAcks(t, 2, 'auth');
    expect(await t.outbox.runOnce()).toEqual({ sent: 0, retrying: 2, failed: 0, withdrawn: 0 });
    expect(await t.runtime.store.outboxCounts()).toMatchObject({ pending: 2, failed: 0 });
    const logged = entries.filter((e) => e.code === 'OUTBOX_AUTH_FAILED');
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatchObject({ level: 'error', error: expect.stringContaining('SMTP_535') });

    env.smtp.setAuthFailure(null);
    t.clock.advance(61_000);
    expect(await t.outbox.runOnce()).toEqual({ sent: 2, retrying: 0, failed: 0, withdrawn: 0 });
    expect((await env.smtp.waitFor(2)).map((m) => m.authUser)).toEqual(['ticketd', 'ticketd']);
  });

  it('`outbox list --failed` shows failed mail and `outbox retry --failed` sends it again', async () => {
    const t = await open();
    env.smtp.setFailureMode({ code: 550, at: 'rcpt', message: 'No such user' });
    await queueAcks(t, 2, 'rejected');
    expect(await t.outbox.runOnce()).toEqual({ sent: 0, retrying: 0, failed: 2, withdrawn: 0 });
    env.smtp.setFailureMode(null);

    const listed = await env.cli(['outbox', 'list', '--failed', '--json']);
    expect(listed.code).toBe(0);
    const rows = JSON.parse(listed.stdout) as { id: number; status: string; kind: string; to: string[]; lastError: string }[];
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ status: 'failed', kind: 'ack', to: ['customer-rejected-0@customer.example'] });
    expect(rows[0]!.lastError).toContain('SMTP_550');

    const retried = await env.cli(['outbox', 'retry', '--failed', '--json']);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toEqual({ requeued: rows.map((r) => r.id) });
    expect(JSON.parse((await env.cli(['outbox', 'list', '--failed', '--json'])).stdout)).toEqual([]);

    // Due now by the system clock, which the CLI used.
    t.clock.set(new Date());
    expect(await t.outbox.runOnce()).toEqual({ sent: 2, retrying: 0, failed: 0, withdrawn: 0 });
    await env.smtp.waitFor(2);

    const again = await env.cli(['outbox', 'retry', String(rows[0]!.id)]);
    expect(again.code).toBe(64);
    expect(again.stderr).toContain('was sent');
    expect((await env.cli(['outbox', 'retry'])).code).toBe(64);
  });

  it('gives up on a send at the deadline when the server never answers DATA, and the pool goes on', async () => {
    const t = await open((c) => (c.smtp.sendTimeoutMs = 1000));
    env.smtp.setStallData(true);
    await queueAcks(t, 1, 'stalled');
    expect(await t.outbox.runOnce()).toEqual({ sent: 0, retrying: 1, failed: 0, withdrawn: 0 });
    const [row] = await t.runtime.store.listOutbox();
    expect(row?.lastError).toContain('SEND_DEADLINE');

    env.smtp.setStallData(false);
    await queueAcks(t, 10, 'after');
    t.clock.advance(61_000);
    const before = env.smtp.connections;
    expect(await t.outbox.runOnce()).toEqual({ sent: 11, retrying: 0, failed: 0, withdrawn: 0 });
    await env.smtp.waitFor(11);
    expect(env.smtp.connections - before).toBeLessThanOrEqual(MAX_CONNECTIONS);
  });

  it('gives claimed rows it has not started back at once when it stops', async () => {
    // every connection's end reaches the server, so each send hangs there rather than waiting its turn
    const t = await open((c) => {
      c.smtp.sendTimeoutMs = 2000;
      c.outbox = { maxInDoubt: MAX_CONNECTIONS };
    });
    env.smtp.setStallData(true);
    await queueAcks(t, 10, 'stop');
    t.outbox.start();
    await until(() => env.smtp.stalled === MAX_CONNECTIONS);
    await t.outbox.stop();
    const rows = await t.runtime.store.listOutbox();
    const started = rows.filter((r) => r.attempts === 1);
    expect(started).toHaveLength(MAX_CONNECTIONS);
    for (const r of started) expect(r.lastError).toContain('SEND_DEADLINE');
    // The others were never tried: due now, not after the lease.
    const unsent = rows.filter((r) => r.attempts === 0);
    expect(unsent).toHaveLength(10 - MAX_CONNECTIONS);
    for (const r of unsent) expect(r.nextAttemptAt).toBeLessThanOrEqual(t.clock.now().getTime());
  });

  it('keeps a pool across a reload that leaves its settings alone and replaces it when they change', async () => {
    const t = await open();
    const pool = t.runtime.mailerFor('support');
    t.runtime.reload(loadConfig(env.configPath));
    expect(t.runtime.mailerFor('support')).toBe(pool);

    env.writeConfig((c) => {
      c.database = `./data/outbox-${dbSeq}.sqlite`;
      c.smtp.maxConnections = MAX_CONNECTIONS + 1;
    });
    t.runtime.reload(loadConfig(env.configPath));
    expect(t.runtime.mailerFor('support')).not.toBe(pool);
    expect(t.runtime.outboxConcurrency()).toBe(MAX_CONNECTIONS + 1);
  });
});

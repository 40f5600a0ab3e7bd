// The README promises that a copy of the database cannot produce a working
// status link. Outgoing mail carries the link, so once it is sent the token
// must be gone from the database file itself, not just from query results.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Runtime } from '../../src/daemon/runtime.js';
import { OutboxWorker } from '../../src/outbox/outbox-worker.js';
import { Duration } from '../../src/core/duration.js';
import { RetrySchedule } from '../../src/outbox/retry-schedule.js';
import { takeMessages } from '../../src/pipeline/take-messages.js';
import { buildWebServer } from '../../src/web/server.js';
import { openFileRuntime, type FileRuntime } from '../harness/file-runtime.js';
import { dbOf } from '../harness/sqlite-store.js';

let installation: FileRuntime;
let dir: string;
let runtime: Runtime;
let outbox: OutboxWorker;
const clock = fixedClock(new Date('2026-03-02T10:00:00Z'));

beforeAll(async () => {
  installation = await openFileRuntime(clock, 'ticketd-redact-');
  ({ dir, runtime } = installation);
  outbox = new OutboxWorker({
    store: runtime.store,
    mailerFor: (m) => runtime.mailerFor(m),
    schedule: new RetrySchedule([Duration.parse('1m')]),
    logger: silentLogger(),
    clock,
    pollIntervalMs: 200,
    batchSize: 10,
    concurrency: () => 4,
    leaseMs: 30_000,
  });
});
afterAll(async () => {
  await installation?.close();
});

/** The database as a copy of its files would have it, once the WAL is folded in. */
function databaseBytes(): Buffer {
  dbOf(runtime).pragma('wal_checkpoint(TRUNCATE)');
  const base = join(dir, 'data', 'ticketd.sqlite');
  return Buffer.concat([base, `${base}-wal`].filter(existsSync).map((f) => readFileSync(f)));
}

describe('status links in sent mail', () => {
  it('are in the database only until the mail is sent; then staff see where the link was, and the link still works', async () => {
    const raw = Buffer.from(
      [
        'From: Jane <jane@customer.example>',
        'To: support@example.com',
        'Subject: Printer',
        'Message-ID: <r1@customer.example>',
        '',
        'It jams.',
        '',
      ].join('\r\n'),
    );
    const [result] = await takeMessages(runtime.pipeline, [{ origin: { via: 'pipe', mailbox: 'support' }, raw }]);
    const ref = result!.ref!;
    const queued = (await runtime.store.ticketDetail(ref))!.messages.find((m) => m.kind === 'ack')!;
    const token = /https:\/\/help\.example\.com\/t\/([A-Za-z0-9_-]{43})/.exec(queued.text)![1]!;
    // Until sent, the stored mail needs it (a retry sends the same bytes).
    expect(databaseBytes().includes(token)).toBe(true);

    expect((await outbox.runOnce()).sent).toBe(1);
    const eml = readdirSync(join(dir, 'outgoing')).find((f) => f.endsWith('.eml'))!;
    expect(readFileSync(join(dir, 'outgoing', eml), 'latin1')).toContain('/t/');

    const bytes = databaseBytes();
    expect(bytes.includes(token)).toBe(false);
    expect(bytes.includes(Buffer.from(token.slice(0, 20)))).toBe(false);
    const sent = (await runtime.store.ticketDetail(ref))!.messages.find((m) => m.kind === 'ack')!;
    expect(sent.text).toContain('https://help.example.com/t/[redacted]');
    expect(sent.text).toContain(ref);

    // The customer's link is unaffected: the database keeps its hash.
    const app = buildWebServer({ site: runtime, readiness: async () => ({}) as never });
    try {
      expect((await app.inject({ method: 'GET', url: `/t/${token}`, remoteAddress: '192.0.2.1' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('are taken out by the next worker when the node that sent the mail died before redacting it', async () => {
    const raw = Buffer.from(
      [
        'From: Joe <joe@customer.example>',
        'To: support@example.com',
        'Subject: Scanner',
        'Message-ID: <r2@customer.example>',
        '',
        'It smokes.',
        '',
      ].join('\r\n'),
    );
    const [result] = await takeMessages(runtime.pipeline, [{ origin: { via: 'pipe', mailbox: 'support' }, raw }]);
    const ref = result!.ref!;
    const ackOf = async () => (await runtime.store.ticketDetail(ref))!.messages.find((m) => m.kind === 'ack')!;
    const token = /https:\/\/help\.example\.com\/t\/([A-Za-z0-9_-]{43})/.exec((await ackOf()).text)![1]!;
    // A node sent it and committed the mark, then was killed before its redaction pass.
    const [job] = await runtime.store.claimOutbox(clock.now().getTime(), 10, 30_000);
    await runtime.store.markOutboxSent([job!.id], clock.now().getTime());
    expect((await ackOf()).text).toContain(token);

    // The next worker to start redacts what was left flagged, with nothing to send.
    outbox.start();
    await outbox.stop();
    expect((await ackOf()).text).toContain('https://help.example.com/t/[redacted]');
    expect(databaseBytes().includes(token)).toBe(false);
  });
});

// What an intake batch computes once instead of per message must give each
// message the figure it would have got alone.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import { openSqliteStore, type SqliteTestStore } from '../harness/sqlite-store.js';
import type { IntakePolicy } from '../../src/store/store.js';
import type { OutboundDraft } from '../../src/core/types.js';
import { newReference } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { intakeItem } from '../harness/intake-item.js';

let dir: string;
let store: SqliteTestStore;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-batch-'));
  store = await openSqliteStore(join(dir, 'db.sqlite'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const clock = fixedClock('2026-11-22T12:00:00Z');

/** A policy that records the queue position each acknowledgement was given, by ticket reference. */
function recordingPolicy(positions: Map<string, number>): IntakePolicy {
  return {
    clock,
    ownAddresses: ['support@example.com'],
    referencePrefixes: ['ACME'],
    links: StatusLinks.fromKey(randomBytes(32)),
    statusUrl: (t) => `http://x/t/${t}`,
    rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 1, ticketsPerSenderPerHour: 10 }),
    newReference: () => newReference('ACME'),
    composeAck: (req): OutboundDraft => {
      positions.set(req.ticket.ref, req.queuePosition);
      return {
        kind: 'ack',
        from: { address: 'support@example.com', name: '' },
        to: [{ address: req.ticket.replyTo, name: '' }],
        subject: req.ticket.subject,
        text: '',
        html: null,
        messageId: `${randomBytes(6).toString('hex')}@ticketd.example.com`,
        inReplyTo: null,
        references: [],
        headers: {},
      };
    },
  };
}

const item = (raw: string) =>
  intakeItem(raw, {
    origin: { via: 'pipe', mailbox: 'support' },
    attachmentsDir: join(dir, 'att'),
    maxAttachmentBytes: 0,
    mustParse: true,
  });

const mail = (id: string, from: string, extra = '') =>
  `From: ${from}\r\nTo: support@example.com\r\nSubject: Help ${id}\r\nMessage-ID: <${id}>\r\n${extra}\r\nbody\r\n`;

/** Runs the scenario, the batch in one transaction or one message per transaction; the positions acknowledged, in order. */
async function scenario(db: SqliteTestStore, together: boolean): Promise<(number | null)[]> {
  const positions = new Map<string, number>();
  const policy = recordingPolicy(positions);
  // Some open tickets already, one of them resolved, so a reply reopens it mid-batch.
  const before = await db.takeBatch([await item(mail('a0', 'a0@c.example')), await item(mail('a1', 'a1@c.example'))], policy);
  await db.setStatus(before[1]!.ref!, 'resolved', { now: clock.now().getTime() });
  const items = [
    await item(mail('b0', 'b0@c.example')),
    // Second ticket of b0 within the hour: over acksPerSenderPerHour, so it opens without an ack.
    await item(mail('b1', 'b0@c.example')),
    await item(mail('b2', 'b2@c.example')),
    // A reply that reopens the resolved ticket: one more open ticket ahead of the next.
    await item(mail('b3', 'a1@c.example', 'In-Reply-To: <a1>\r\n')),
    await item(mail('b4', 'b4@c.example')),
  ];
  const results = together
    ? await db.takeBatch(items, policy)
    : (await Promise.all(items.map((i) => db.takeBatch([i], policy)))).flat();
  expect(results.map((r) => r.outcome)).toEqual(['taken', 'taken', 'taken', 'threaded', 'taken']);
  return results.map((r) => (r.ackQueued ? positions.get(r.ref!)! : null));
}

describe('queue position in a batch', () => {
  it('gives every acknowledgement of a batch the position it gets when each message commits alone', async () => {
    const alone = await openSqliteStore(join(dir, 'alone.sqlite'));
    try {
      const expected = await scenario(alone, false);
      expect(expected).toEqual([1, null, 3, null, 5]);
      expect(await scenario(store, true)).toEqual(expected);
    } finally {
      await alone.close();
    }
  });
});

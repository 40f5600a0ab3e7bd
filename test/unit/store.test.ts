import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import type { MessageOrigin } from '../../src/core/types.js';
import { DatabaseTooNewError } from '../../src/store/migrate.js';
import { openSqliteStore, type SqliteTestStore } from '../harness/sqlite-store.js';
import type { IntakePolicy } from '../../src/store/store.js';
import type { OutboundDraft } from '../../src/core/types.js';
import { newReference } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { intakeItem } from '../harness/intake-item.js';
import type { CommitWait, SqlEngine } from '../../src/store/sql-engine.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { decideThread } from '../../src/thread/decide-thread.js';
import { referencesInSubject } from '../../src/thread/reference.js';

let dir: string;
let store: SqliteTestStore;

function policy(overrides: Partial<IntakePolicy> = {}): IntakePolicy {
  return {
    clock: fixedClock('2026-11-22T12:00:00Z'),
    ownAddresses: ['support@example.com'],
    referencePrefixes: ['ACME'],
    links: StatusLinks.fromKey(randomBytes(32)),
    statusUrl: (t) => `http://x/t/${t}`,
    rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10 }),
    newReference: () => newReference('ACME'),
    composeAck: (req): OutboundDraft => ({
      kind: 'ack',
      from: { address: 'support@example.com', name: '' },
      to: [{ address: req.ticket.replyTo, name: '' }],
      subject: `[${req.ticket.ref}] ${req.ticket.subject}`,
      text: req.statusUrl,
      html: null,
      messageId: `${randomBytes(6).toString('hex')}@ticketd.example.com`,
      inReplyTo: req.inbound.messageId,
      references: [],
      headers: { 'Auto-Submitted': 'auto-replied' },
    }),
    ...overrides,
  };
}

const item = (raw: string, origin: MessageOrigin) => intakeItem(raw, { origin, attachmentsDir: join(dir, 'att') });

const mail = (id: string, from = 'jane@customer.example', subject = 'Help') =>
  `From: ${from}\r\nTo: support@example.com\r\nSubject: ${subject}\r\nMessage-ID: <${id}>\r\n\r\nbody\r\n`;
const imap = (uid: number, uidValidity = 1): MessageOrigin => ({ via: 'imap', mailbox: 'support', uidValidity, uid });

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-store-'));
  store = await openSqliteStore(join(dir, 'db.sqlite'));
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('SqliteStore intake', () => {
  it('takes a batch in one go and never twice, by UID or by Message-ID', async () => {
    const first = await store.takeBatch(
      [await item(mail('a@c'), imap(1)), await item(mail('b@c', 'bob@c.example'), imap(2))],
      policy(),
    );
    expect(first.map((r) => r.outcome)).toEqual(['taken', 'taken']);
    expect(first.every((r) => r.ackQueued)).toBe(true);

    const again = await store.takeBatch([await item(mail('a@c'), imap(1))], policy());
    expect(again[0]).toMatchObject({ outcome: 'duplicate', reason: 'uid-already-taken' });
    // Same message under a new UIDVALIDITY, or delivered again by pipe.
    const moved = await store.takeBatch(
      [await item(mail('a@c'), imap(1, 2)), await item(mail('b@c'), { via: 'pipe', mailbox: 'support' })],
      policy(),
    );
    expect(moved.map((r) => r.reason)).toEqual(['message-id-already-taken', 'message-id-already-taken']);

    expect(await store.listTickets()).toHaveLength(2);
    expect((await store.outboxCounts()).pending).toBe(2);
    expect(await store.unsettledReceipts('support', 2)).toEqual([{ uid: 1, outcome: 'duplicate' }]);
    expect(await store.getCursor('support')).toEqual({ uidValidity: 2, lastUid: 1 });
  });

  it('takes a message that reached two of our mailboxes once, unless another sender reused its Message-ID', async () => {
    const sales = (uid: number): MessageOrigin => ({ via: 'imap', mailbox: 'sales', uidValidity: 1, uid });
    const [first] = await store.takeBatch([await item(mail('both@c'), imap(1))], policy());
    const [copy] = await store.takeBatch([await item(mail('both@c'), sales(1))], policy());
    expect(first).toMatchObject({ outcome: 'taken', ackQueued: true });
    expect(copy).toMatchObject({
      outcome: 'duplicate',
      reason: 'message-id-taken-in-another-mailbox',
      ackQueued: false,
      ref: first!.ref,
    });
    expect(await store.unsettledReceipts('sales', 1)).toEqual([{ uid: 1, outcome: 'duplicate' }]);
    // a clash between two senders is not the same message
    const [clash] = await store.takeBatch([await item(mail('both@c', 'mallory@other.example'), sales(2))], policy());
    expect(clash).toMatchObject({ outcome: 'taken' });
    expect((await store.listTickets()).map((t) => [t.mailbox, t.requester])).toEqual([
      ['support', 'jane@customer.example'],
      ['sales', 'mallory@other.example'],
    ]);
    expect((await store.outboxCounts()).pending).toBe(2);
    // the listener's one message for two desks is one ticket too, named to the second desk
    const lmtp = await store.takeBatch(
      [
        await item(mail('desks@c'), { via: 'lmtp', mailbox: 'support' }),
        await item(mail('desks@c'), { via: 'lmtp', mailbox: 'sales' }),
      ],
      policy(),
    );
    expect(lmtp[0]!.ref).toMatch(/^ACME-/);
    expect(lmtp.map((r) => [r.outcome, r.ref])).toEqual([
      ['taken', lmtp[0]!.ref],
      ['duplicate', lmtp[0]!.ref],
    ]);
  });

  it('deduplicates mail without a Message-ID by the hash of its raw bytes', async () => {
    const raw = 'From: jane@customer.example\r\nSubject: no id\r\n\r\nhello\r\n';
    await store.takeBatch([await item(raw, { via: 'pipe', mailbox: 'support' })], policy());
    const [r] = await store.takeBatch([await item(raw, { via: 'pipe', mailbox: 'support' })], policy());
    expect(r!.outcome).toBe('duplicate');
  });

  it('quarantines a message whose stage throws, undoing only that message', async () => {
    let calls = 0;
    const flaky = policy({
      composeAck: (req) => {
        if (++calls === 1) throw new Error('template exploded');
        return policy().composeAck(req);
      },
    });
    const results = await store.takeBatch(
      [await item(mail('p@c'), imap(1)), await item(mail('q@c', 'q@c.example'), imap(2))],
      flaky,
    );
    expect(results.map((r) => r.outcome)).toEqual(['quarantined', 'taken']);
    expect(results[0]!.reason).toBe('stage-error: template exploded');
    expect(await store.listTickets()).toHaveLength(1);
    const q = await store.listQuarantine();
    expect(q).toHaveLength(1);
    expect((await store.quarantineRaw(q[0]!.id))!.raw.toString()).toContain('Message-ID: <p@c>');
    // The quarantined UID is owed a move to the quarantine folder.
    expect(await store.unsettledReceipts('support', 1)).toEqual([
      { uid: 1, outcome: 'quarantined' },
      { uid: 2, outcome: 'taken' },
    ]);
  });

  it('rolls back the whole batch when the transaction cannot commit', async () => {
    const boom = policy();
    boom.clock = { now: () => new Date(Number.NaN) };
    await expect(store.takeBatch([await item(mail('z@c'), imap(1))], boom)).rejects.toThrow();
    expect(await store.listTickets()).toHaveLength(0);
    expect(await store.knownUids('support', 1, [1])).toEqual(new Set());
  });

  it('issues one status token per ticket and recipient and stores only nonce and hash', async () => {
    const p = policy();
    const [r] = await store.takeBatch([await item(mail('t@c'), imap(1))], p);
    const ticket = (await store.ticketByRef(r!.ref!))!;
    const a = await store.tokenFor(ticket.id, ticket.replyTo, p.links, 0);
    const b = await store.tokenFor(ticket.id, ticket.replyTo, p.links, 0);
    expect(a).toBe(b);
    const rows = store.db.prepare('SELECT * FROM status_tokens').all() as Record<string, unknown>[];
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(a);
    expect(rows[0]!.token_hash).toBe(StatusLinks.hash(a));
  });
});

describe('what each commit waits for', () => {
  it('the intake and the composed bytes wait for the disk; claims, sent marks, redactions and releases only for the engine', async () => {
    const waits: CommitWait[] = [];
    const engine = store.engine;
    // the same engine, recording what each transaction's commit is asked to wait for
    const recording = new Proxy(engine, {
      get(target, prop) {
        if (prop === 'transaction')
          return (body: never, lock: never, wait?: CommitWait) => {
            waits.push(wait ?? 'disk');
            return target.transaction(body, lock, wait);
          };
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as SqlEngine;
    const watched = new SqlStore(recording, { thread: { decide: decideThread, referencesIn: referencesInSubject }, hooks: {} });
    const during = async (fn: () => Promise<unknown>) => {
      waits.length = 0;
      await fn();
      return [...new Set(waits)];
    };
    const now = Date.parse('2026-11-22T12:00:00Z');

    expect(await during(async () => watched.takeBatch([await item(mail('a@c'), imap(1))], policy()))).toEqual(['disk']);
    let jobs: Awaited<ReturnType<SqlStore['claimOutbox']>> = [];
    expect(await during(async () => (jobs = await watched.claimOutbox(now, 10, 60_000)))).toEqual(['engine']);
    expect(jobs).toHaveLength(1);
    const job = jobs[0]!;
    expect(
      await during(() => watched.saveOutboundRaw([{ messageRow: job.messageRow, raw: Buffer.from('Subject: x\r\n\r\nx') }], now)),
    ).toEqual(['disk']);
    expect(await during(() => watched.releaseOutbox([job.id], now))).toEqual(['engine']);
    expect(await during(() => watched.markOutboxSent([job.id], now))).toEqual(['engine']);
    let redacted = 0;
    expect(await during(async () => (redacted = await watched.redactSentMail(10)))).toEqual(['engine']);
    expect(redacted).toBe(1);
  });
});

describe('migrations', () => {
  it('refuses a database newer than the code', async () => {
    await store.close();
    const raw = new BetterSqlite3(join(dir, 'db.sqlite'));
    raw.pragma('user_version = 999');
    raw.close();
    await expect(openSqliteStore(join(dir, 'db.sqlite'))).rejects.toThrow(DatabaseTooNewError);
    store = await openSqliteStore(':memory:');
  });

  it('runs in WAL mode with synchronous FULL and foreign keys', () => {
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(store.db.pragma('foreign_keys', { simple: true })).toBe(1);
  });
});

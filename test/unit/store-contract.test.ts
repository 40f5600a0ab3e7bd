// The store's contract, run against every engine: the rules are written once
// over SqlEngine, so each engine must give the same answers. An engine joins
// by adding a factory to ENGINES (a fresh, migrated, empty database each).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import type { MessageOrigin } from '../../src/core/types.js';
import { HealthReads } from '../../src/store/health-reads.js';
import { LeaseStore } from '../../src/store/lease-store.js';
import { openEngine } from '../../src/store/open-store.js';
import type { SqlEngine } from '../../src/store/sql-engine.js';
import { SqlStore } from '../../src/store/sql-store.js';
import type { IntakeItem, IntakePolicy, StoreHooks, TicketChange } from '../../src/store/store.js';
import type { OutboundDraft } from '../../src/core/types.js';
import { TICKET_NOT_FOUND } from '../../src/store/ticket-records.js';
import { decideThread } from '../../src/thread/decide-thread.js';
import { newReference, referencesInSubject } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { intakeItem } from '../harness/intake-item.js';

interface EngineFactory {
  name: string;
  /** A migrated, empty database; `drop` closes and removes it. */
  open(): Promise<{ engine: SqlEngine; drop(): Promise<void> }>;
}

const ENGINES: EngineFactory[] = [
  {
    name: 'sqlite',
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'ticketd-contract-'));
      const engine = await openEngine(join(dir, 'db.sqlite'));
      return {
        engine,
        async drop() {
          await engine.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    async open() {
      // one private server for the file, a fresh database for each test
      postgres ??= startPostgres();
      const server = await postgres;
      const engine = await openEngine(await server.createDatabase());
      return {
        engine,
        async drop() {
          await engine.close();
        },
      };
    },
  },
];

let postgres: Promise<PostgresServer> | undefined;
afterAll(async () => {
  await (await postgres)?.stop();
});

const NOW = Date.parse('2026-11-22T12:00:00Z');
const attachmentsDir = mkdtempSync(join(tmpdir(), 'ticketd-contract-att-'));

function policy(overrides: Partial<IntakePolicy> = {}): IntakePolicy {
  return {
    clock: fixedClock(new Date(NOW)),
    ownAddresses: ['support@example.com'],
    referencePrefixes: ['ACME'],
    links: StatusLinks.fromKey(randomBytes(32)),
    statusUrl: (t) => `http://x/t/${t}`,
    rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10 }),
    newReference: () => newReference('ACME'),
    composeAck: (req): OutboundDraft =>
      draft('ack', req.ticket.replyTo, `[${req.ticket.ref}] ${req.ticket.subject}`, req.statusUrl),
    ...overrides,
  };
}

function draft(kind: string, to: string, subject: string, text: string): OutboundDraft {
  return {
    kind,
    from: { address: 'support@example.com', name: 'Support' },
    to: [{ address: to, name: '' }],
    subject,
    text,
    html: null,
    messageId: `${randomBytes(6).toString('hex')}@ticketd.example.com`,
    inReplyTo: null,
    references: [],
    headers: { 'Auto-Submitted': 'auto-replied' },
  };
}

const item = (raw: string, origin: MessageOrigin) => intakeItem(raw, { origin, attachmentsDir });

const mail = (id: string, opts: { from?: string; subject?: string; inReplyTo?: string } = {}) =>
  [
    `From: ${opts.from ?? 'jane@customer.example'}`,
    'To: support@example.com',
    `Subject: ${opts.subject ?? 'Help'}`,
    `Message-ID: <${id}>`,
    ...(opts.inReplyTo ? [`In-Reply-To: <${opts.inReplyTo}>`] : []),
    '',
    'body',
    '',
  ].join('\r\n');
const imap = (uid: number, uidValidity = 1): MessageOrigin => ({ via: 'imap', mailbox: 'support', uidValidity, uid });
const pipe: MessageOrigin = { via: 'pipe', mailbox: 'support' };

describe.each(ENGINES)('the store on $name', (factory) => {
  let engine: SqlEngine;
  let drop: () => Promise<void>;
  let changes: { ticketId: number; change: TicketChange }[];
  let hooks: StoreHooks;
  let store: SqlStore;

  beforeEach(async () => {
    ({ engine, drop } = await factory.open());
    changes = [];
    hooks = {
      afterTicketChange: async (_tx, ticketId, change) => {
        changes.push({ ticketId, change });
      },
    };
    store = new SqlStore(engine, { thread: { decide: decideThread, referencesIn: referencesInSubject }, hooks });
  });
  afterEach(() => drop());

  describe('intake', () => {
    it('takes a message once: a second copy by UID or by Message-ID is a duplicate', async () => {
      const p = policy();
      const [first] = await store.takeBatch([await item(mail('a@c'), imap(1))], p);
      expect(first).toMatchObject({ outcome: 'taken', ackQueued: true });
      expect(first!.ref).toMatch(/^ACME-/);
      const again = await store.takeBatch([await item(mail('a@c'), imap(1)), await item(mail('a@c'), pipe)], p);
      expect(again.map((r) => [r.outcome, r.reason])).toEqual([
        ['duplicate', 'uid-already-taken'],
        ['duplicate', 'message-id-already-taken'],
      ]);
      expect(await store.listTickets()).toHaveLength(1);
      expect(await store.outboxCounts()).toEqual({ pending: 1, failed: 0, sent: 0 });
    });

    it('threads a reply from a participant and reopens a resolved ticket', async () => {
      const p = policy();
      const [first] = await store.takeBatch([await item(mail('q@c'), pipe)], p);
      await store.setStatus(first!.ref!, 'resolved', { now: NOW });
      const [reply] = await store.takeBatch([await item(mail('r@c', { inReplyTo: 'q@c', subject: 'Re: Help' }), pipe)], p);
      expect(reply).toMatchObject({ outcome: 'threaded', reason: 'reopened', ref: first!.ref });
      expect((await store.ticketByRef(first!.ref!))!.status).toBe('open');
    });

    it('a message whose stage throws is quarantined alone; the rest of the batch is taken', async () => {
      const p = policy({
        composeAck: (req) => {
          if (req.inbound.messageId === 'bad@c') throw new Error('template broke');
          return draft('ack', req.ticket.replyTo, req.ticket.subject, req.statusUrl);
        },
      });
      const results = await store.takeBatch(
        [
          await item(mail('ok1@c'), imap(1)),
          await item(mail('bad@c', { from: 'bob@customer.example' }), imap(2)),
          await item(mail('ok2@c', { from: 'eve@customer.example' }), imap(3)),
        ],
        p,
      );
      expect(results.map((r) => r.outcome)).toEqual(['taken', 'quarantined', 'taken']);
      expect(results[1]!.reason).toBe('stage-error: template broke');
      // Nothing of the bad message stayed but its quarantine row and receipt.
      expect((await store.listTickets()).map((t) => t.requester).sort()).toEqual([
        'eve@customer.example',
        'jane@customer.example',
      ]);
      expect(await store.listQuarantine()).toHaveLength(1);
      expect(await store.knownUids('support', 1, [1, 2, 3, 4])).toEqual(new Set([1, 2, 3]));
    });

    it('calls afterTicketChange with the transaction for every change; a hook that throws undoes the message', async () => {
      const p = policy();
      const [taken] = await store.takeBatch([await item(mail('h1@c'), pipe)], p);
      const id = (await store.ticketByRef(taken!.ref!))!.id;
      await store.takeBatch([await item(mail('h2@c', { inReplyTo: 'h1@c' }), pipe)], p);
      await store.addAgentReply(taken!.ref!, (t, url) => draft('agent-reply', t.replyTo, t.subject, url), p, NOW);
      await store.setStatus(taken!.ref!, 'pending', { now: NOW });
      expect(changes).toEqual([
        { ticketId: id, change: 'created' },
        { ticketId: id, change: 'customer-reply' },
        { ticketId: id, change: 'agent-reply' },
        { ticketId: id, change: 'status' },
      ]);
      hooks.afterTicketChange = async (tx, ticketId) => {
        await tx.run('touch-ticket', [NOW + 1, ticketId]);
        throw new Error('hook failed');
      };
      const [failed] = await store.takeBatch([await item(mail('h3@c', { from: 'zed@customer.example' }), pipe)], p);
      expect(failed).toMatchObject({ outcome: 'quarantined', reason: 'stage-error: hook failed' });
      expect(await store.listTickets()).toHaveLength(1);
    });
  });

  describe('outbox queue', () => {
    it('leases what it claims, and marks sent, retried, failed, released and requeued rows', async () => {
      const p = policy();
      await store.takeBatch(
        [await item(mail('o1@c'), pipe), await item(mail('o2@c', { from: 'bob@customer.example' }), pipe)],
        p,
      );
      const jobs = await store.claimOutbox(NOW, 10, 60_000, 1);
      expect(jobs).toHaveLength(2);
      expect(jobs.every((j) => j.attempts === 1 && j.draft.kind === 'ack')).toBe(true);
      expect(await store.claimOutbox(NOW, 10, 60_000)).toEqual([]);
      await store.saveOutboundRaw([{ messageRow: jobs[0]!.messageRow, raw: Buffer.from('raw bytes') }], NOW);
      await store.markOutboxSent([jobs[0]!.id], NOW);
      await store.releaseOutbox([jobs[1]!.id], NOW);
      const [again] = await store.claimOutbox(NOW, 10, 60_000);
      expect(again).toMatchObject({ id: jobs[1]!.id, attempts: 1 });
      await store.markOutboxRetry(again!.id, NOW + 60_000, 'greylisted');
      expect(await store.claimOutbox(NOW + 59_000, 10, 60_000)).toEqual([]);
      await store.markOutboxFailed(again!.id, 'mailbox unavailable', NOW);
      expect(await store.outboxCounts()).toEqual({ pending: 0, failed: 1, sent: 1 });
      expect((await store.listOutbox({ failedOnly: true })).map((e) => [e.id, e.lastError])).toEqual([
        [again!.id, 'mailbox unavailable'],
      ]);
      expect(await store.requeueOutbox('failed', NOW)).toEqual([again!.id]);
      expect(await store.outboxCounts()).toEqual({ pending: 1, failed: 0, sent: 1 });
    });
  });

  describe('mailbox cursors', () => {
    it('keeps the cursor, the receipts and which of them still owe a move', async () => {
      expect(await store.getCursor('support')).toBeNull();
      await store.takeBatch(
        [await item(mail('c1@c'), imap(7, 3)), await item(mail('c2@c', { from: 'bob@customer.example' }), imap(9, 3))],
        policy(),
      );
      expect(await store.getCursor('support')).toEqual({ uidValidity: 3, lastUid: 9 });
      expect(await store.unsettledReceipts('support', 3)).toEqual([
        { uid: 7, outcome: 'taken' },
        { uid: 9, outcome: 'taken' },
      ]);
      await store.markSettled('support', 3, [7], NOW);
      expect((await store.unsettledReceipts('support', 3)).map((r) => r.uid)).toEqual([9]);
      await store.resetCursor('support', 4, NOW);
      expect(await store.getCursor('support')).toEqual({ uidValidity: 4, lastUid: 0 });
      await store.markWatched('support', NOW);
      await store.markRead('support', NOW);
    });
  });

  describe('what doctor reads', () => {
    it('counts tickets and live nodes, and gives each mailbox its last reads', async () => {
      const health = new HealthReads(engine);
      expect(await health.ticketCount()).toBe(0);
      expect(await health.mailboxReads()).toEqual(new Map());
      await store.takeBatch([await item(mail('h1@c'), imap(1))], policy());
      await store.markWatched('support', NOW - 60_000);
      await store.markRead('support', NOW);
      await new LeaseStore(engine).register({ name: 'node-a', incarnation: 'a-1', host: 'a', pid: 1 }, NOW, NOW + 30_000);
      expect(await health.ticketCount()).toBe(1);
      expect(await health.mailboxReads()).toEqual(new Map([['support', { watchedSince: NOW - 60_000, readAt: NOW }]]));
      expect(await health.liveNodeCount(NOW)).toBe(1);
      expect(await health.liveNodeCount(NOW + 30_000)).toBe(0);
    });
  });

  describe('ticket commands', () => {
    it('hands off, changes status and answers, each with its events; an unknown reference is refused with a code', async () => {
      const p = policy();
      const [r] = await store.takeBatch([await item(mail('t1@c'), pipe)], p);
      const ref = r!.ref!;
      await store.handoff(ref, 'Hardware', 'serial 4711', NOW);
      await store.setStatus(ref, 'on-hold', { reason: 'part ordered', now: NOW });
      const replied = await store.addAgentReply(
        ref,
        (t, url, thread) => ({ ...draft('agent-reply', t.replyTo, t.subject, url), ...thread }),
        p,
        NOW,
      );
      expect(replied).toMatchObject({ team: 'Hardware', status: 'on-hold', onHoldReason: 'part ordered', firstResponseAt: NOW });
      const detail = (await store.ticketDetail(ref))!;
      expect(detail.messages.map((m) => m.kind)).toEqual(['request', 'ack', 'agent-reply']);
      expect(detail.events.map((e) => [e.type, e.public])).toEqual([
        ['received', true],
        ['acknowledged', true],
        ['handoff', true],
        ['note', false],
        ['status', true],
        ['reply', true],
      ]);
      expect(await store.queuePosition((await store.ticketByRef(ref))!)).toBe(0);
      await expect(store.setStatus('ACME-ZZZZZZ', 'closed', { now: NOW })).rejects.toMatchObject({ code: TICKET_NOT_FOUND });
      expect(await store.ticketDetail('ACME-ZZZZZZ')).toBeNull();
    });

    it('resolves with the resolution mail in one transaction, threaded; a second resolve is refused with nothing queued', async () => {
      const p = policy();
      const [r] = await store.takeBatch([await item(mail('rs1@c'), pipe)], p);
      const ref = r!.ref!;
      const seen: { status: string; inReplyTo: string | null; references: string[] }[] = [];
      const compose = (
        t: Parameters<Parameters<typeof store.resolveWithNotice>[1]>[0],
        url: string,
        thread: { inReplyTo: string | null; references: string[] },
      ) => {
        seen.push({ status: t.status, ...thread });
        return { ...draft('resolved', t.replyTo, t.subject, url), ...thread };
      };
      const resolved = await store.resolveWithNotice(ref, compose, p, NOW);
      expect(resolved.status).toBe('resolved');
      const detail = (await store.ticketDetail(ref))!;
      expect(detail.messages.map((m) => m.kind)).toEqual(['request', 'ack', 'resolved']);
      const ack = detail.messages.find((m) => m.kind === 'ack')!;
      // Composed once the ticket is resolved, as the answer to the last mail of the conversation.
      expect(seen).toEqual([{ status: 'resolved', inReplyTo: ack.messageId, references: ['rs1@c', ack.messageId] }]);
      expect((await store.outboxCounts()).pending).toBe(2);
      await expect(store.resolveWithNotice(ref, compose, p, NOW)).rejects.toMatchObject({ code: 'TICKETD_STATUS_UNCHANGED' });
      expect((await store.ticketDetail(ref))!.messages).toHaveLength(3);
      expect(seen).toHaveLength(1);
    });
  });

  describe('quarantine', () => {
    it('keeps what could not be parsed, with its bytes, until released', async () => {
      const bad: IntakeItem = { origin: imap(1), raw: Buffer.from('not a mail'), stage: { ok: false, reason: 'too-large' } };
      const [r] = await store.takeBatch([bad], policy());
      expect(r).toMatchObject({ outcome: 'quarantined', reason: 'too-large' });
      const [entry] = await store.listQuarantine();
      expect(entry).toMatchObject({ id: r!.quarantineId, mailbox: 'support', reason: 'too-large', size: 10, releasedAt: null });
      expect((await store.quarantineRaw(entry!.id))!.raw.toString()).toBe('not a mail');
      await store.markQuarantineReleased(entry!.id, 'taken', NOW);
      expect(await store.listQuarantine()).toEqual([]);
      expect(await store.listQuarantine({ includeReleased: true })).toHaveLength(1);
    });
  });

  describe('engine', () => {
    it('runs what afterCommit asked for once the change can be read elsewhere, and never for what was rolled back', async () => {
      const seen: (string | null)[] = [];
      const reads: Promise<unknown>[] = [];
      const read = (name: string) => () => {
        // read outside the transaction, as a scheduler woken by it would
        reads.push(store.getCursor(name).then((c) => seen.push(c === null ? null : name)));
      };
      await engine.transaction(async (tx) => {
        await tx.run('upsert-cursor', { mailbox: 'kept', uidValidity: 1, lastUid: 1, now: NOW });
        tx.afterCommit(read('kept'));
        await tx
          .savepoint(async (sp) => {
            sp.afterCommit(() => seen.push('undone savepoint'));
            throw new Error('undo');
          })
          .catch(() => undefined);
        await tx.savepoint(async (sp) => sp.afterCommit(read('kept')));
        expect(seen).toEqual([]);
      });
      await engine
        .transaction(async (tx) => {
          tx.afterCommit(() => seen.push('rolled back'));
          throw new Error('undo');
        })
        .catch(() => undefined);
      await Promise.all(reads);
      expect(seen).toEqual(['kept', 'kept']);
    });

    it('serialises transactions that read, wait and write, so no update is lost', async () => {
      await store.resetCursor('support', 1, NOW);
      const bump = () =>
        engine.transaction(async (tx) => {
          const c = await tx.get<{ lastUid: number }>('get-cursor', ['support']);
          await new Promise((resolve) => setTimeout(resolve, 5));
          await tx.run('upsert-cursor', { mailbox: 'support', uidValidity: 1, lastUid: c!.lastUid + 1, now: NOW });
        });
      await Promise.all([bump(), bump(), bump()]);
      expect(await store.getCursor('support')).toEqual({ uidValidity: 1, lastUid: 3 });
    });

    it('rolls back a transaction that rejects, and a savepoint that rejects without its transaction', async () => {
      await expect(
        engine.transaction(async (tx) => {
          await tx.run('upsert-cursor', { mailbox: 'undone', uidValidity: 1, lastUid: 1, now: NOW });
          throw new Error('undo');
        }),
      ).rejects.toThrow('undo');
      expect(await store.getCursor('undone')).toBeNull();
      await engine.transaction(async (tx) => {
        await tx.run('upsert-cursor', { mailbox: 'a', uidValidity: 1, lastUid: 1, now: NOW });
        await tx
          .savepoint(async (sp) => sp.run('upsert-cursor', { mailbox: 'b', uidValidity: 1, lastUid: 1, now: NOW }))
          .catch(() => null);
        await tx
          .savepoint(async (sp) => {
            await sp.run('upsert-cursor', { mailbox: 'c', uidValidity: 1, lastUid: 1, now: NOW });
            throw new Error('undo c');
          })
          .catch(() => null);
      });
      expect(await store.getCursor('a')).not.toBeNull();
      expect(await store.getCursor('b')).not.toBeNull();
      expect(await store.getCursor('c')).toBeNull();
      expect(await engine.probeWrite()).toEqual({ ok: true });
    });
  });
});

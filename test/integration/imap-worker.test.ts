import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { parseConfig, type MailboxConfig } from '../../src/config/load-config.js';
import type { Pipeline } from '../../src/pipeline/take-messages.js';
import { createProgress } from '../../src/core/progress.js';
import { ImapWorker, type ImapWorkerOptions } from '../../src/sources/imap/imap-worker.js';
import { openSqliteStore, type SqliteTestStore } from '../harness/sqlite-store.js';
import type { IntakePolicy, IntakeResult } from '../../src/store/store.js';
import { newReference } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { startDovecot, type DovecotServer, type MailUser } from '../harness/dovecot.js';

const TEST = { timeout: 90_000 };
const PASS = 'pw-4f1c9a7e2b';
const USERS: MailUser[] = [
  'move',
  'flag',
  'quarantine',
  'uidvalidity',
  'crash',
  'moved',
  'idle',
  'poll',
  'stop',
  'restart',
  'ahead',
  'aheadcrash',
].map((name) => ({
  user: `${name}@example.com`,
  pass: PASS,
}));
const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'mail');

function customerMail(subject: string, opts: { messageId?: string; bodyBytes?: number } = {}): string {
  const body = opts.bodyBytes === undefined ? 'The printer is on fire.' : wrapped('x', opts.bodyBytes);
  return [
    'From: Customer <customer@example.org>',
    'To: support@example.com',
    `Subject: ${subject}`,
    `Message-ID: <${opts.messageId ?? `${randomUUID()}@example.org`}>`,
    'Date: Mon, 02 Mar 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
    '',
  ].join('\r\n');
}

/** `bytes` of `ch` in 76-character lines, as a body must be. */
function wrapped(ch: string, bytes: number): string {
  const lines: string[] = [];
  for (let left = bytes; left > 0; left -= 78) lines.push(ch.repeat(Math.min(76, left)));
  return lines.join('\r\n');
}

/** Runs the dovecot binary; stdio is not piped because the daemonized master would hold the pipes open. */
function runDovecot(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/sbin/dovecot', args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`dovecot ${args.join(' ')} exited with ${code}`))));
  });
}

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const text: string[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(line: string) {
        text.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, text, codes: () => lines.map((l) => l.code) };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface Rig {
  worker: ImapWorker;
  store: SqliteTestStore;
  mailbox: MailboxConfig;
  log: ReturnType<typeof captureLogger>;
  results: IntakeResult[];
  user: string;
}

describe('ImapWorker against Dovecot', () => {
  let server: DovecotServer;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    server = await startDovecot({ users: USERS });
  }, 60_000);

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  }, 60_000);

  async function rig(
    user: string,
    opts: {
      mailbox?: Record<string, unknown>;
      imap?: Record<string, unknown>;
      maxMessageBytes?: number;
      target?: DovecotServer;
      worker?: Partial<ImapWorkerOptions>;
      onResult?: (r: IntakeResult) => void;
      store?: SqliteTestStore;
    } = {},
  ): Promise<Rig> {
    const target = opts.target ?? server;
    const dir = mkdtempSync(path.join(tmpdir(), 'ticketd-imap-worker-'));
    const store = opts.store ?? (await openSqliteStore(path.join(dir, 'ticketd.sqlite')));
    cleanups.push(async () => {
      if (opts.store === undefined) await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // through the real config parser, so the worker sees the defaults a config file gets
    const config = parseConfig(
      {
        publicUrl: 'http://x',
        smtp: { transport: 'file', fileDir: dir, from: 'support@example.com' },
        mailboxes: [
          {
            name: 'support',
            address: 'support@example.com',
            referencePrefix: 'ACME',
            imap: {
              host: target.host,
              port: target.port,
              secure: false,
              auth: { user, pass: PASS },
              pollIntervalMs: 60_000,
              operationTimeoutMs: 15_000,
              ...opts.imap,
            },
            ...opts.mailbox,
          },
        ],
      },
      dir,
    );
    const mailbox = config.mailboxes[0]!;
    const links = StatusLinks.fromKey(randomBytes(32));
    const policy: IntakePolicy = {
      clock: systemClock,
      rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10 }),
      ownAddresses: ['support@example.com'],
      referencePrefixes: ['ACME'],
      newReference: () => newReference('ACME'),
      composeAck: (req) => ({
        kind: 'ack',
        from: { address: 'support@example.com', name: 'Support' },
        to: [{ address: req.ticket.requester, name: req.ticket.requesterName }],
        subject: `[${req.ticket.ref}] ${req.ticket.subject}`,
        text: `We have your request. Status: ${req.statusUrl}`,
        html: null,
        messageId: `${randomUUID()}@tickets.example.com`,
        inReplyTo: req.inbound.messageId,
        references: req.inbound.messageId === null ? [] : [req.inbound.messageId],
        headers: { 'Auto-Submitted': 'auto-replied' },
      }),
      links,
      statusUrl: (t) => `http://x/t/${t}`,
    };
    const log = captureLogger();
    const results: IntakeResult[] = [];
    const pipeline: Pipeline = {
      store,
      policy: () => policy,
      logger: log.logger,
      dataDir: dir,
      limits: { maxMessageBytes: opts.maxMessageBytes ?? 10 * 1024 * 1024, maxAttachmentBytes: 10 * 1024 * 1024 },
      ownAddresses: ['support@example.com'],
      ownMessageIdDomains: ['tickets.example.com'],
      onResult: (r) => {
        results.push(r);
        opts.onResult?.(r);
      },
    };
    const worker = new ImapWorker({ mailbox, pipeline, logger: log.logger, clock: systemClock, ...opts.worker });
    cleanups.push(() => worker.stop());
    return { worker, store, mailbox, log, results, user };
  }

  const folder = (user: string, name: string, target = server) => target.listFolder(user, name).catch(() => []);
  async function withImap<T>(user: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = new ImapFlow({
      host: server.host,
      port: server.port,
      secure: false,
      auth: { user, pass: PASS },
      logger: false,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.logout().catch(() => client.close());
    }
  }
  const receipts = (store: SqliteTestStore) =>
    store.db
      .prepare(
        'SELECT uid_validity AS uidValidity, uid, outcome, settled_at AS settledAt FROM imap_receipts ORDER BY uid_validity, uid',
      )
      .all() as {
      uidValidity: number;
      uid: number;
      outcome: string;
      settledAt: number | null;
    }[];

  it('takes three messages into three tickets and moves them to Processed', TEST, async () => {
    const { worker, store, user, log } = await rig('move@example.com');
    for (const n of [1, 2, 3]) await server.appendMessage(user, 'INBOX', customerMail(`Request ${n}`));

    expect(await worker.runOnce()).toEqual({ taken: 3 });

    const tickets = await store.listTickets();
    expect(tickets.map((t) => t.subject).sort()).toEqual(['Request 1', 'Request 2', 'Request 3']);
    expect(await folder(user, 'INBOX')).toEqual([]);
    expect(await folder(user, 'Processed')).toHaveLength(3);
    const uidValidity = (await store.getCursor('support'))!.uidValidity;
    expect(await store.unsettledReceipts('support', uidValidity)).toEqual([]);
    expect(await store.getCursor('support')).toEqual({ uidValidity, lastUid: 3 });

    const batches = log.lines.filter((l) => l.code === 'IMAP_BATCH');
    expect(batches).toHaveLength(1);
    expect(batches[0]).toMatchObject({ mailbox: 'support', count: 3 });
    expect(typeof batches[0]!.ms).toBe('number');
    expect(worker.health()).toMatchObject({ connected: true, lastError: null, idle: false });
    expect(worker.health().lastPollAt).toBeGreaterThan(Date.now() - 60_000);
    // the password reaches Dovecot, never the log
    expect(log.text.join('')).not.toContain(PASS);

    // nothing new: a second cycle on the same connection takes nothing
    expect(await worker.runOnce()).toEqual({ taken: 0 });
    expect(log.codes().filter((c) => c === 'IMAP_CONNECTED')).toHaveLength(1);
  });

  it('in flag mode leaves messages in INBOX marked \\Seen and does not take them again', TEST, async () => {
    const { worker, store, user } = await rig('flag@example.com', { mailbox: { processedAction: 'flag' } });
    await server.appendMessage(user, 'INBOX', customerMail('Flag me 1'));
    await server.appendMessage(user, 'INBOX', customerMail('Flag me 2'));

    expect(await worker.runOnce()).toEqual({ taken: 2 });
    const inbox = await folder(user, 'INBOX');
    expect(inbox).toHaveLength(2);
    for (const m of inbox) expect(m.flags).toContain('\\Seen');
    expect(await folder(user, 'Processed')).toEqual([]);
    expect(await store.listTickets()).toHaveLength(2);

    expect(await worker.runOnce()).toEqual({ taken: 0 });
    expect(await store.listTickets()).toHaveLength(2);

    // a fresh connection (a restarted daemon) does not take them again either
    await worker.stop();
    const again = await rig(user, { mailbox: { processedAction: 'flag' }, store });
    expect(await again.worker.runOnce()).toEqual({ taken: 0 });
    expect(await store.listTickets()).toHaveLength(2);
  });

  it('quarantines an over-size message from its first 64 KiB and still takes the next one', TEST, async () => {
    const { worker, store, user } = await rig('quarantine@example.com', { maxMessageBytes: 100 * 1024 });
    const bigId = `${randomUUID()}@example.org`;
    const goodId = `${randomUUID()}@example.org`;
    await server.appendMessage(user, 'INBOX', customerMail('Huge attachment', { messageId: bigId, bodyBytes: 300 * 1024 }));
    await server.appendMessage(user, 'INBOX', readFileSync(path.join(FIXTURES, 'garbage-truncated.eml')));
    await server.appendMessage(user, 'INBOX', customerMail('Normal request', { messageId: goodId }));

    expect(await worker.runOnce()).toEqual({ taken: 3 });

    expect(await folder(user, 'INBOX')).toEqual([]);
    const quarantineFolder = await folder(user, 'Quarantine');
    const processedFolder = await folder(user, 'Processed');
    expect(quarantineFolder.map((m) => m.messageId)).toContain(`<${bigId}>`);
    expect(processedFolder.map((m) => m.messageId)).toContain(`<${goodId}>`);

    const tickets = await store.listTickets();
    expect(tickets.map((t) => t.subject)).toContain('Normal request');
    expect(tickets.map((t) => t.subject)).not.toContain('Huge attachment');

    const entries = await store.listQuarantine();
    const big = entries.find((e) => e.origin.via === 'imap' && e.origin.uid === 1);
    expect(big?.reason).toMatch(/^too-large/);
    // only the head was downloaded
    expect((await store.quarantineRaw(big!.id))!.raw.length).toBe(64 * 1024);

    // the garbage message went wherever its outcome says, and only there
    const garbage = receipts(store).find((r) => r.uid === 2)!;
    const garbageIn = garbage.outcome === 'quarantined' ? quarantineFolder : processedFolder;
    expect(garbageIn.filter((m) => m.messageId === undefined)).toHaveLength(1);
    expect(quarantineFolder.length + processedFolder.length).toBe(3);
    expect(receipts(store).every((r) => r.settledAt !== null)).toBe(true);
  });

  it('after a UIDVALIDITY change takes the folder again without duplicate tickets', TEST, async () => {
    const { worker, store, user, log } = await rig('uidvalidity@example.com', { mailbox: { processedAction: 'flag' } });
    await server.appendMessage(user, 'INBOX', customerMail('Before reset 1'));
    await server.appendMessage(user, 'INBOX', customerMail('Before reset 2'));
    expect(await worker.runOnce()).toEqual({ taken: 2 });
    const before = (await store.getCursor('support'))!;

    await server.resetUidValidity(user, 'INBOX');
    await server.appendMessage(user, 'INBOX', customerMail('After reset'));

    expect(await worker.runOnce()).toEqual({ taken: 3 });
    const after = (await store.getCursor('support'))!;
    expect(after.uidValidity).not.toBe(before.uidValidity);
    expect(after.lastUid).toBe(3);

    const tickets = await store.listTickets();
    expect(tickets.map((t) => t.subject).sort()).toEqual(['After reset', 'Before reset 1', 'Before reset 2']);
    const fresh = receipts(store).filter((r) => r.uidValidity === after.uidValidity);
    expect(fresh.map((r) => [r.uid, r.outcome])).toEqual([
      [1, 'duplicate'],
      [2, 'duplicate'],
      [3, 'taken'],
    ]);
    expect(fresh.every((r) => r.settledAt !== null)).toBe(true);
    const changes = log.lines.filter((l) => l.code === 'IMAP_UIDVALIDITY_CHANGED').map((l) => ({ old: l.old, new: l.new }));
    expect(changes).toEqual([
      { old: null, new: before.uidValidity },
      { old: before.uidValidity, new: after.uidValidity },
    ]);
    for (const m of await folder(user, 'INBOX')) expect(m.flags).toContain('\\Seen');
  });

  it('settles on the next cycle what was committed before a crash, without a second ticket', TEST, async () => {
    let crash = true;
    const { worker, store, user, log } = await rig('crash@example.com', {
      worker: {
        beforeSettle: () => {
          if (crash) {
            crash = false;
            throw new Error('simulated crash between commit and move');
          }
        },
      },
    });
    await server.appendMessage(user, 'INBOX', customerMail('Crash 1'));
    await server.appendMessage(user, 'INBOX', customerMail('Crash 2'));

    await expect(worker.runOnce()).rejects.toThrow('simulated crash');
    expect(await store.listTickets()).toHaveLength(2);
    expect(await folder(user, 'INBOX')).toHaveLength(2);
    const uidValidity = (await store.getCursor('support'))!.uidValidity;
    expect(await store.unsettledReceipts('support', uidValidity)).toEqual([
      { uid: 1, outcome: 'taken' },
      { uid: 2, outcome: 'taken' },
    ]);
    expect(log.lines.find((l) => l.code === 'IMAP_DISCONNECTED')).toMatchObject({
      error: 'simulated crash between commit and move',
    });
    expect(worker.health()).toMatchObject({ connected: false, lastError: 'simulated crash between commit and move' });

    expect(await worker.runOnce()).toEqual({ taken: 0 });
    expect(await store.listTickets()).toHaveLength(2);
    expect(await folder(user, 'INBOX')).toEqual([]);
    expect(await folder(user, 'Processed')).toHaveLength(2);
    expect(await store.unsettledReceipts('support', uidValidity)).toEqual([]);
    expect(log.lines.find((l) => l.code === 'IMAP_SETTLED_OWED')).toMatchObject({ count: 2 });
    expect(worker.health().lastError).toBeNull();
  });

  it('settles receipts whose messages were already moved when the run stopped', TEST, async () => {
    let crash = true;
    const { worker, store, user } = await rig('moved@example.com', {
      worker: {
        beforeSettle: async (uids) => {
          if (!crash) return;
          crash = false;
          // the MOVE reached the server, the run died before recording it
          await withImap(user, async (client) => {
            await client.mailboxOpen('INBOX');
            await client.mailboxCreate('Processed');
            await client.messageMove(uids.join(','), 'Processed', { uid: true });
          });
          throw new Error('simulated crash between move and markSettled');
        },
      },
    });
    await server.appendMessage(user, 'INBOX', customerMail('Moved 1'));
    await server.appendMessage(user, 'INBOX', customerMail('Moved 2'));
    await expect(worker.runOnce()).rejects.toThrow('simulated crash');
    const uidValidity = (await store.getCursor('support'))!.uidValidity;
    expect(await store.unsettledReceipts('support', uidValidity)).toHaveLength(2);

    expect(await worker.runOnce()).toEqual({ taken: 0 });
    expect(await store.unsettledReceipts('support', uidValidity)).toEqual([]);
    expect(await folder(user, 'Processed')).toHaveLength(2);
    expect(await store.listTickets()).toHaveLength(2);
  });

  it('with IDLE takes new mail within seconds, not after pollIntervalMs, and stops promptly', TEST, async () => {
    const { worker, store, user } = await rig('idle@example.com', { imap: { idle: true, pollIntervalMs: 60_000 } });
    worker.start();
    await waitFor('IDLE', () => worker.health().idle);

    const sentAt = Date.now();
    await server.appendMessage(user, 'INBOX', customerMail('Arrives during IDLE'));
    await waitFor('the ticket', async () => (await store.listTickets()).length === 1, 15_000);
    expect(Date.now() - sentAt).toBeLessThan(10_000);
    await waitFor('the move', async () => (await folder(user, 'Processed')).length === 1);
    await waitFor('IDLE again', () => worker.health().idle);

    const stopAt = Date.now();
    await worker.stop();
    expect(Date.now() - stopAt).toBeLessThan(5_000);
    expect(worker.health()).toMatchObject({ connected: false, idle: false });
  });

  it('without IDLE polls every pollIntervalMs', TEST, async () => {
    const waits: number[] = [];
    const { worker, store, user } = await rig('poll@example.com', {
      imap: { idle: false, pollIntervalMs: 250 },
      worker: {
        sleep: (ms, signal) => {
          waits.push(ms);
          return new Promise((resolve) => {
            const timer = setTimeout(resolve, ms);
            signal.addEventListener('abort', () => {
              clearTimeout(timer);
              resolve();
            });
          });
        },
      },
    });
    worker.start();
    await waitFor('a poll', () => waits.length >= 2);
    await server.appendMessage(user, 'INBOX', customerMail('Found by polling'));
    await waitFor('the ticket', async () => (await store.listTickets()).length === 1);
    expect(worker.health().idle).toBe(false);
    expect(new Set(waits)).toEqual(new Set([250]));
  });

  it('stop() during a batch commits and moves that batch and takes no further one', TEST, async () => {
    let stopping: Promise<void> | null = null;
    let worker: ImapWorker | null = null;
    const first = await rig('stop@example.com', {
      imap: { batchSize: 2 },
      onResult: () => {
        stopping ??= worker!.stop();
      },
    });
    worker = first.worker;
    const { store, user, log } = first;
    for (const n of [1, 2, 3, 4, 5]) await server.appendMessage(user, 'INBOX', customerMail(`Batch ${n}`));

    worker.start();
    await waitFor('stop() to be called', () => stopping !== null);
    await stopping;

    expect((await store.listTickets()).map((t) => t.subject).sort()).toEqual(['Batch 1', 'Batch 2']);
    expect(await folder(user, 'Processed')).toHaveLength(2);
    expect(await folder(user, 'INBOX')).toHaveLength(3);
    const uidValidity = (await store.getCursor('support'))!.uidValidity;
    expect(await store.unsettledReceipts('support', uidValidity)).toEqual([]);
    expect(log.codes()).toContain('IMAP_LOGGED_OUT');
    expect(worker.health().connected).toBe(false);

    // the rest is still there for the next run, taken as a backlog with progress shown
    const shown: string[] = [];
    const next = await rig(user, {
      imap: { batchSize: 2 },
      store,
      worker: {
        progress: (o) =>
          createProgress({ ...o, stream: { isTTY: false, write: (t: string) => shown.push(t) }, lineIntervalMs: 0 }),
      },
    });
    expect(await next.worker.runOnce()).toEqual({ taken: 3 });
    expect(await store.listTickets()).toHaveLength(5);
    const batches = next.log.lines.filter((l) => l.code === 'IMAP_BATCH');
    expect(batches.map((l) => [l.count, l.remaining])).toEqual([
      [2, 1],
      [1, 0],
    ]);
    expect(shown).toEqual([
      'support: taking 3 messages: 2/3 (66%)\n',
      'support: taking 3 messages: 3/3 (100%)\n',
      expect.stringMatching(/^support: taking 3 messages: 3\/3 done in /),
    ]);
  });

  it('takes mail that arrives during a backlog ahead of the rest of the backlog', TEST, async () => {
    let arrived: Promise<number> | null = null;
    const { worker, store, user, results, log } = await rig('ahead@example.com', {
      imap: { batchSize: 2 },
      worker: {
        // A customer writes while the first batch of the backlog is being taken.
        beforeSettle: async () => {
          arrived ??= server.appendMessage('ahead@example.com', 'INBOX', customerMail('Written during the backlog'));
          await arrived;
        },
      },
    });
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) await server.appendMessage(user, 'INBOX', customerMail(`Backlog ${n}`));

    expect(await worker.runOnce()).toEqual({ taken: 9 });
    const freshUid = await arrived!;
    const order = results.map((r) => (r.origin.via === 'imap' ? r.origin.uid : null));
    expect(order).toHaveLength(9);
    // committed before the backlog's last message, and at most one batch (the one already fetched) after it arrived
    expect(order.indexOf(freshUid)).toBeLessThan(order.indexOf(8));
    expect(order.indexOf(freshUid)).toBeLessThan(order.indexOf(5));
    expect(log.lines.filter((l) => l.code === 'IMAP_BATCH' && l.ahead === true).map((l) => l.count)).toEqual([1]);

    expect(await store.listTickets()).toHaveLength(9);
    expect(await folder(user, 'INBOX')).toEqual([]);
    expect(await folder(user, 'Processed')).toHaveLength(9);
    const uidValidity = (await store.getCursor('support'))!.uidValidity;
    expect(await store.unsettledReceipts('support', uidValidity)).toEqual([]);
    expect(receipts(store).map((r) => r.uid)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, freshUid]);
  });

  it('after a crash behind mail taken ahead of a backlog, still takes the older messages, each once', TEST, async () => {
    let arrived: Promise<number> | null = null;
    let freshCommitted = false;
    let crashed = false;
    const { worker, store, user } = await rig('aheadcrash@example.com', {
      imap: { batchSize: 2 },
      worker: {
        beforeSettle: async (uids) => {
          arrived ??= server.appendMessage('aheadcrash@example.com', 'INBOX', customerMail('Written during the backlog'));
          const freshUid = await arrived;
          if (uids.includes(freshUid)) freshCommitted = true;
          // The first backlog batch committed after the new message: the run dies before moving it.
          else if (freshCommitted && !crashed) {
            crashed = true;
            throw new Error('simulated crash after mail taken ahead');
          }
        },
      },
    });
    for (const n of [1, 2, 3, 4, 5, 6, 7, 8]) await server.appendMessage(user, 'INBOX', customerMail(`Backlog ${n}`));

    await expect(worker.runOnce()).rejects.toThrow('simulated crash after mail taken ahead');
    // the new message and three batches of the backlog are in; four backlog messages wait, two of them committed
    const before = (await store.listTickets()).length;
    expect(before).toBeLessThan(9);
    expect((await store.getCursor('support'))!.lastUid).toBeLessThan(8);

    // the next run settles what was committed and takes the rest of the backlog, below the new message's UID
    const second = await worker.runOnce();
    expect(second.taken + before).toBe(9);
    const subjects = (await store.listTickets()).map((t) => t.subject).sort();
    expect(subjects).toEqual([...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => `Backlog ${n}`), 'Written during the backlog'].sort());
    expect(await folder(user, 'INBOX')).toEqual([]);
    expect(await folder(user, 'Processed')).toHaveLength(9);
    expect(receipts(store).map((r) => r.uid)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, await arrived!]);
    expect(receipts(store).every((r) => r.settledAt !== null)).toBe(true);
  });

  it('reconnects with backoff after Dovecot is stopped and started again', TEST, async () => {
    // a private instance, so stopping it leaves the other tests' server alone
    const own = await startDovecot({ users: USERS.filter((u) => u.user === 'restart@example.com') });
    cleanups.push(() => own.stop());
    const config = path.join(own.dir, 'dovecot.conf');
    const { worker, store, user, log } = await rig('restart@example.com', {
      target: own,
      imap: { idle: true, pollIntervalMs: 60_000, operationTimeoutMs: 5_000 },
      worker: { backoff: { baseMs: 200, factor: 2, maxMs: 1_000 } },
    });
    await own.appendMessage(user, 'INBOX', customerMail('Before the outage'));
    worker.start();
    await waitFor('the first ticket', async () => (await store.listTickets()).length === 1);
    await waitFor('IDLE', () => worker.health().idle);

    await runDovecot(['-c', config, 'stop']);
    await waitFor('the worker to notice', () => !worker.health().connected);
    // let it fail a few reconnects
    await waitFor('failed reconnects', () => log.lines.filter((l) => l.code === 'IMAP_DISCONNECTED').length >= 3);
    expect(worker.health().lastError).not.toBeNull();

    await runDovecot(['-c', config]);
    await own.appendMessage(user, 'INBOX', customerMail('After the outage'));
    await waitFor('the second ticket', async () => (await store.listTickets()).length === 2, 30_000);
    await waitFor('IDLE again', () => worker.health().idle);

    const retries = log.lines.filter((l) => l.code === 'IMAP_DISCONNECTED').map((l) => l.retryInMs);
    for (const delay of retries) {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(1_000);
    }
    expect(log.codes().filter((c) => c === 'IMAP_CONNECTED')).toHaveLength(2);
    expect(worker.health()).toMatchObject({ connected: true, lastError: null });
    expect((await store.listTickets()).map((t) => t.subject).sort()).toEqual(['After the outage', 'Before the outage']);
    expect(await folder(user, 'INBOX', own)).toEqual([]);
    expect(log.text.join('')).not.toContain(PASS);
  });

  it('gives up an operation that outlives operationTimeoutMs and tries again', TEST, async () => {
    // accepts connections and never says a word
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          silent.close(() => resolve());
        }),
    );
    const port = (silent.address() as AddressInfo).port;
    const { worker, log } = await rig('move@example.com', {
      imap: { host: '127.0.0.1', port, operationTimeoutMs: 300 },
      worker: { backoff: { baseMs: 50, factor: 2, maxMs: 100 } },
    });
    const startedAt = Date.now();
    worker.start();
    await waitFor('two timeouts', () => log.lines.filter((l) => l.errorCode === 'TICKETD_IMAP_TIMEOUT').length >= 2, 10_000);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    const timeouts = log.lines.filter((l) => l.errorCode === 'TICKETD_IMAP_TIMEOUT');
    expect(timeouts[0]).toMatchObject({ code: 'IMAP_DISCONNECTED', error: 'IMAP connect did not finish within 300 ms' });
    expect(worker.health().lastError).toBe('IMAP connect did not finish within 300 ms');
    // each attempt's connection was closed before the next one was opened
    await waitFor('abandoned sockets to close', () => sockets.size <= 1, 5_000);
  });

  it('keeps retrying a refused login and never logs the password', TEST, async () => {
    const { worker, log } = await rig('move@example.com', {
      imap: { auth: { user: 'move@example.com', pass: 'wrong-password-91c2' } },
      worker: { backoff: { baseMs: 50, factor: 2, maxMs: 100 } },
    });
    worker.start();
    await waitFor('two refused logins', () => log.lines.filter((l) => l.code === 'IMAP_AUTH_FAILED').length >= 2);
    expect(worker.health()).toMatchObject({ connected: false });
    expect(worker.health().lastError).not.toBeNull();
    await worker.stop();
    expect(log.text.join('')).not.toContain('wrong-password-91c2');
  });
});

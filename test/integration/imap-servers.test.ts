// The IMAP worker against servers other than a full-featured Dovecot: Cyrus
// IMAP (plain NO for CREATE of an existing folder, `INBOX.` namespace),
// Dovecot without IDLE, MOVE and UIDPLUS, and a connection that a NAT drops
// silently while the worker is in IDLE.

import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type MailboxConfig } from '../../src/config/load-config.js';
import { systemClock } from '../../src/core/clock.js';
import type { Pipeline } from '../../src/pipeline/take-messages.js';
import { ImapWorker, type ImapWorkerOptions } from '../../src/sources/imap/imap-worker.js';
import { openSqliteStore, type SqliteTestStore } from '../harness/sqlite-store.js';
import type { IntakePolicy } from '../../src/store/store.js';
import { newReference } from '../../src/thread/reference.js';
import { StatusLinks } from '../../src/core/status-links.js';
import { startBlackholeProxy } from '../harness/blackhole-proxy.js';
import { startCyrus, type CyrusServer } from '../harness/cyrus.js';
import { startDovecot, type DovecotServer, type FolderMessage, type MailUser } from '../harness/dovecot.js';

const TEST = { timeout: 120_000 };
const PASS = 'pw-9d2e61c0';

type MailServer = Pick<CyrusServer, 'host' | 'port' | 'appendMessage' | 'listFolder' | 'restart'>;

function users(...names: string[]): MailUser[] {
  return names.map((name) => ({ user: `${name}@example.com`, pass: PASS }));
}

function customerMail(subject: string, messageId = `${randomUUID()}@example.org`, body = 'The printer is on fire.'): string {
  return [
    'From: Customer <customer@example.org>',
    'To: support@example.com',
    `Subject: ${subject}`,
    `Message-ID: <${messageId}>`,
    'Date: Mon, 02 Mar 2026 10:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
    '',
  ].join('\r\n');
}

function captureLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines, codes: () => lines.map((l) => l.code) };
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}, 60_000);

/** A worker for `user` on `server`, with its own database unless `store` is given. */
async function rig(
  server: { host: string; port: number },
  user: string,
  opts: {
    mailbox?: Record<string, unknown>;
    imap?: Record<string, unknown>;
    worker?: Partial<ImapWorkerOptions>;
    store?: SqliteTestStore;
    maxMessageBytes?: number;
  } = {},
) {
  const dir = mkdtempSync(path.join(tmpdir(), 'ticketd-imap-servers-'));
  const store = opts.store ?? (await openSqliteStore(path.join(dir, 'ticketd.sqlite')));
  cleanups.push(async () => {
    if (opts.store === undefined) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
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
            host: server.host,
            port: server.port,
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
  const mailbox: MailboxConfig = config.mailboxes[0]!;
  const policy: IntakePolicy = {
    clock: systemClock,
    rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 100, ticketsPerSenderPerHour: 100 }),
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
    links: StatusLinks.fromKey(randomBytes(32)),
    statusUrl: (t) => `http://x/t/${t}`,
  };
  const log = captureLogger();
  const pipeline: Pipeline = {
    store,
    policy: () => policy,
    logger: log.logger,
    dataDir: dir,
    limits: { maxMessageBytes: opts.maxMessageBytes ?? 10 * 1024 * 1024, maxAttachmentBytes: 10 * 1024 * 1024 },
    ownAddresses: ['support@example.com'],
    ownMessageIdDomains: ['tickets.example.com'],
  };
  const worker = new ImapWorker({ mailbox, pipeline, logger: log.logger, clock: systemClock, ...opts.worker });
  cleanups.push(() => worker.stop());
  return { worker, store, log };
}

const subjects = async (store: SqliteTestStore) => (await store.listTickets()).map((t) => t.subject).sort();
const ids = (messages: FolderMessage[]) => messages.map((m) => m.messageId).sort();
const listed = (server: MailServer, user: string, folder: string) =>
  server.listFolder(user, folder).catch(() => [] as FolderMessage[]);

describe('ImapWorker against Cyrus IMAP', () => {
  let cyrus: CyrusServer;

  beforeAll(async () => {
    cyrus = await startCyrus({ users: users('take', 'again', 'restart', 'quarantine', 'plain', 'deflate') });
  }, 60_000);
  afterAll(async () => {
    await cyrus?.stop();
  }, 60_000);

  it('takes mail and moves it to INBOX.Processed, the folder named Processed in the config', TEST, async () => {
    const user = 'take@example.com';
    const { worker, store } = await rig(cyrus, user);
    for (const n of [1, 2]) await cyrus.appendMessage(user, 'INBOX', customerMail(`Cyrus ${n}`));
    expect(await worker.runOnce()).toEqual({ taken: 2 });
    expect(await subjects(store)).toEqual(['Cyrus 1', 'Cyrus 2']);
    expect(await listed(cyrus, user, 'INBOX')).toEqual([]);
    expect(await listed(cyrus, user, 'INBOX.Processed')).toHaveLength(2);
  });

  it('compresses a session only when the mailbox asks for it, though Cyrus offers COMPRESS=DEFLATE', TEST, async () => {
    for (const [user, compress] of [
      ['plain@example.com', undefined],
      ['deflate@example.com', true],
    ] as const) {
      const proxy = await startBlackholeProxy(cyrus);
      cleanups.push(() => proxy.stop());
      const { worker, store } = await rig(proxy, user, compress === undefined ? {} : { imap: { compress } });
      await cyrus.appendMessage(user, 'INBOX', customerMail(`Compressed: ${compress ?? false}`));
      expect(await worker.runOnce()).toEqual({ taken: 1 });
      expect(await subjects(store)).toEqual([`Compressed: ${compress ?? false}`]);
      expect(proxy.sentByClients().includes(' COMPRESS DEFLATE\r\n')).toBe(compress === true);
    }
  });

  it('keeps taking mail on a new session and after a restart of ticketd, when the folders exist already', TEST, async () => {
    const user = 'again@example.com';
    const first = await rig(cyrus, user);
    await cyrus.appendMessage(user, 'INBOX', customerMail('First session'));
    expect(await first.worker.runOnce()).toEqual({ taken: 1 });
    await first.worker.stop();

    // a restarted daemon: same database, new session; Processed exists and Cyrus says a plain NO to CREATE
    const second = await rig(cyrus, user, { store: first.store });
    await cyrus.appendMessage(user, 'INBOX', customerMail('Second session'));
    expect(await second.worker.runOnce()).toEqual({ taken: 1 });
    expect(await subjects(first.store)).toEqual(['First session', 'Second session']);
    expect(await listed(cyrus, user, 'INBOX')).toEqual([]);
    expect(await listed(cyrus, user, 'Processed')).toHaveLength(2);
    expect(second.worker.health().lastError).toBeNull();
  });

  it('quarantines into INBOX.Quarantine on a later session too', TEST, async () => {
    const user = 'quarantine@example.com';
    const tooLarge = (n: number) =>
      customerMail(`Too large ${n}`, `big${n}@example.org`, 'x'.repeat(70).concat('\r\n').repeat(100));
    const first = await rig(cyrus, user, { maxMessageBytes: 4_096 });
    await cyrus.appendMessage(user, 'INBOX', tooLarge(1));
    expect(await first.worker.runOnce()).toEqual({ taken: 1 });
    await first.worker.stop();
    const second = await rig(cyrus, user, { store: first.store, maxMessageBytes: 4_096 });
    await cyrus.appendMessage(user, 'INBOX', tooLarge(2));
    expect(await second.worker.runOnce()).toEqual({ taken: 1 });
    expect(ids(await listed(cyrus, user, 'INBOX.Quarantine'))).toEqual(['<big1@example.org>', '<big2@example.org>']);
    expect(await listed(cyrus, user, 'INBOX')).toEqual([]);
    expect((await first.store.listQuarantine()).map((q) => q.reason.replace(/:.*/, ''))).toEqual(['too-large', 'too-large']);
  });

  it('reconnects after Cyrus is restarted and goes on taking mail', TEST, async () => {
    const user = 'restart@example.com';
    const { worker, store, log } = await rig(cyrus, user, {
      imap: { idle: true, pollIntervalMs: 60_000, operationTimeoutMs: 5_000 },
      worker: { backoff: { baseMs: 200, factor: 2, maxMs: 1_000 } },
    });
    await cyrus.appendMessage(user, 'INBOX', customerMail('Before the restart'));
    worker.start();
    await waitFor('the first ticket', async () => (await store.listTickets()).length === 1);
    await waitFor('IDLE', () => worker.health().idle);

    await cyrus.restart(async () => {
      await waitFor('the worker to notice', () => !worker.health().connected);
      await waitFor('a failed reconnect', () => log.lines.filter((l) => l.code === 'IMAP_DISCONNECTED').length >= 2);
    });
    await cyrus.appendMessage(user, 'INBOX', customerMail('After the restart'));
    await waitFor('the second ticket', async () => (await store.listTickets()).length === 2, 30_000);
    await waitFor('IDLE again', () => worker.health().idle);
    expect(await subjects(store)).toEqual(['After the restart', 'Before the restart']);
    expect(await listed(cyrus, user, 'INBOX')).toEqual([]);
    expect(await listed(cyrus, user, 'Processed')).toHaveLength(2);
    expect(worker.health()).toMatchObject({ connected: true, lastError: null });
  });
});

describe('ImapWorker against Dovecot without IDLE, MOVE and UIDPLUS', () => {
  let plain: DovecotServer;

  beforeAll(async () => {
    plain = await startDovecot({ users: users('nomove', 'poll'), withoutCapabilities: ['IDLE', 'MOVE', 'UIDPLUS'] });
  }, 60_000);
  afterAll(async () => {
    await plain?.stop();
  }, 60_000);

  it('moves by COPY and EXPUNGE without expunging a message someone else marked \\Deleted', TEST, async () => {
    const user = 'nomove@example.com';
    const { worker, store } = await rig(plain, user, { imap: { batchSize: 1 } });
    const marked = `${randomUUID()}@example.org`;
    await plain.appendMessage(user, 'INBOX', customerMail('Taken first'));
    // marked for deletion by a person's mail client, not expunged yet, and not taken by ticketd yet
    await plain.appendMessage(user, 'INBOX', customerMail('Marked deleted by someone', marked), ['\\Deleted']);
    await plain.appendMessage(user, 'INBOX', customerMail('Taken last'));

    expect(await worker.runOnce()).toEqual({ taken: 3 });
    expect(await subjects(store)).toEqual(['Marked deleted by someone', 'Taken first', 'Taken last']);
    const processed = await listed(plain, user, 'Processed');
    expect(processed).toHaveLength(3);
    expect(ids(processed)).toContain(`<${marked}>`);
    expect(await listed(plain, user, 'INBOX')).toEqual([]);
  });

  it('leaves alone a \\Deleted message it has not taken while it expunges its own', TEST, async () => {
    const user = 'nomove@example.com';
    let late = true;
    const { worker, store } = await rig(plain, user, {
      worker: {
        beforeSettle: async () => {
          if (!late) return;
          late = false;
          // appears between the take and the move, already flagged by another client
          await plain.appendMessage(user, 'INBOX', customerMail('Arrived during the move', 'late@example.org'), ['\\Deleted']);
        },
      },
    });
    await plain.appendMessage(user, 'INBOX', customerMail('Ours'));
    const firstPass = await worker.runOnce();
    expect(firstPass.taken).toBeGreaterThanOrEqual(1);
    // whatever pass took it, the late message was taken rather than expunged unseen
    await worker.runOnce();
    expect(await subjects(store)).toContain('Arrived during the move');
    expect(ids(await listed(plain, user, 'Processed'))).toContain('<late@example.org>');
  });

  it('polls when the server has no IDLE, even with idle on in the config', TEST, async () => {
    const user = 'poll@example.com';
    const { worker, store } = await rig(plain, user, { imap: { idle: true, pollIntervalMs: 300 } });
    worker.start();
    let idled = false;
    const watch = setInterval(() => (idled ||= worker.health().idle), 20);
    cleanups.push(() => clearInterval(watch));
    await waitFor('the first poll', () => worker.health().lastPollAt !== null);
    await plain.appendMessage(user, 'INBOX', customerMail('Found by polling'));
    await waitFor('the ticket', async () => (await store.listTickets()).length === 1);
    expect(idled).toBe(false);
    await waitFor('the move', async () => (await listed(plain, user, 'Processed')).length === 1);
  });
});

describe('a connection that goes silent during IDLE', () => {
  let dovecot: DovecotServer;

  beforeAll(async () => {
    dovecot = await startDovecot({ users: users('silent') });
  }, 60_000);
  afterAll(async () => {
    await dovecot?.stop();
  }, 60_000);

  it('is given up within the poll interval plus a few seconds, not the operation timeout', TEST, async () => {
    const user = 'silent@example.com';
    const proxy = await startBlackholeProxy(dovecot);
    cleanups.push(() => proxy.stop());
    const pollIntervalMs = 2_000;
    const { worker, store, log } = await rig(proxy, user, {
      // the default operation timeout: what the NOOP that ends IDLE used to wait for
      imap: { idle: true, pollIntervalMs, operationTimeoutMs: 60_000 },
      worker: { backoff: { baseMs: 200, factor: 2, maxMs: 1_000 } },
    });
    worker.start();
    await waitFor('IDLE', () => worker.health().idle);

    expect(proxy.blackhole()).toBe(1);
    const silentAt = Date.now();
    await dovecot.appendMessage(user, 'INBOX', customerMail('Sent while the flow was dead'));
    // a poll interval, the short deadline on leaving IDLE, a reconnect, with room for a busy machine
    await waitFor('the ticket', async () => (await store.listTickets()).length === 1, pollIntervalMs + 25_000);
    const deafMs = Date.now() - silentAt;
    const noticedMs = Number(log.lines.find((l) => l.code === 'IMAP_DISCONNECTED')!.time) - silentAt;
    console.log(
      `blackholed IDLE session: given up after ${noticedMs} ms, mail taken after ${deafMs} ms (poll interval ${pollIntervalMs} ms)`,
    );
    expect(log.codes().filter((c) => c === 'IMAP_CONNECTED')).toHaveLength(2);
  });
});

// What a write transaction waits for when several nodes share one PostgreSQL
// database: the outbox's claims and sent marks wait for nothing but their
// rows, the intake of one mailbox does not wait for another's, and what the
// intake decides on (a mailbox, a Message-ID, a reply address) is still
// decided by one transaction at a time.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import { StatusLinks } from '../../src/core/status-links.js';
import type { OutboundDraft } from '../../src/core/types.js';
import { intakeKeys } from '../../src/store/intake.js';
import { openEngine } from '../../src/store/open-store.js';
import type { SqlEngine } from '../../src/store/sql-engine.js';
import { SqlStore } from '../../src/store/sql-store.js';
import type { IntakePolicy } from '../../src/store/store.js';
import { decideThread } from '../../src/thread/decide-thread.js';
import { newReference, referencesInSubject } from '../../src/thread/reference.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { intakeItem } from '../harness/intake-item.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
/** Far longer than any of these commits takes: reaching it means the commit waited for the other node. */
const WAITED_MS = 20_000;

let server: PostgresServer;
let attachmentsDir: string;

beforeAll(async () => {
  server = await startPostgres();
  attachmentsDir = mkdtempSync(join(tmpdir(), 'ticketd-locks-att-'));
}, 60_000);
afterAll(async () => {
  await server?.stop();
  rmSync(attachmentsDir, { recursive: true, force: true });
});

const policy = (): IntakePolicy => ({
  clock: fixedClock(new Date(NOW)),
  ownAddresses: ['support@example.com', 'sales@example.com'],
  referencePrefixes: ['ACME'],
  links: StatusLinks.fromKey(randomBytes(32)),
  statusUrl: (t) => `http://x/t/${t}`,
  rulesFor: () => ({ reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10 }),
  newReference: () => newReference('ACME'),
  composeAck: (req): OutboundDraft => ({
    kind: 'ack',
    from: { address: 'support@example.com', name: 'Support' },
    to: [{ address: req.ticket.replyTo, name: '' }],
    subject: `[${req.ticket.ref}] ${req.ticket.subject}`,
    text: req.statusUrl,
    html: null,
    messageId: `${randomBytes(6).toString('hex')}@ticketd.example.com`,
    inReplyTo: null,
    references: [],
    headers: { 'Auto-Submitted': 'auto-replied' },
  }),
});

const mail = (id: string, from = 'jane@customer.example') =>
  [`From: ${from}`, 'To: support@example.com, sales@example.com', 'Subject: Help', `Message-ID: <${id}>`, '', 'body', ''].join(
    '\r\n',
  );

const item = (raw: string, mailbox: string) =>
  intakeItem(raw, {
    origin: { via: 'pipe', mailbox },
    attachmentsDir,
    ownAddresses: [...policy().ownAddresses],
    mustParse: true,
  });

/** `work`'s value, or a failure naming what it waited for once WAITED_MS pass. */
function unblocked<T>(what: string, work: Promise<T>): Promise<T> {
  let timer!: NodeJS.Timeout;
  const waited = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} waited for the other node's transaction`)), WAITED_MS);
  });
  return Promise.race([work, waited]).finally(() => clearTimeout(timer));
}

describe('write transactions of several nodes on PostgreSQL', () => {
  let nodes: SqlEngine[];
  let stores: SqlStore[];

  beforeEach(async () => {
    const url = await server.createDatabase();
    nodes = [await openEngine(url), await openEngine(url)];
    stores = nodes.map(
      (e) => new SqlStore(e, { thread: { decide: decideThread, referencesIn: referencesInSubject }, hooks: {} }),
    );
  });
  afterEach(async () => {
    await Promise.all(nodes.map((e) => e.close()));
  });

  it("claims and marks a send sent while another node's long write transaction is open", async () => {
    const [a, b] = stores as [SqlStore, SqlStore];
    await a.takeBatch([await item(mail('ack@c'), 'support')], policy());
    // node B in the middle of a ticket command, an SLA pass, or anything else that runs alone
    const sent = await nodes[1]!.transaction(async (tx) => {
      await tx.run('readiness-write-probe');
      const [job] = await unblocked('the outbox claim', a.claimOutbox(NOW, 10, 60_000, 1, null));
      await unblocked('the sent mark', a.markOutboxSent([job!.id], NOW));
      return job!.id;
    });
    expect((await b.listOutbox({ id: sent }))[0]?.status).toBe('sent');
  }, 60_000);

  it("takes one mailbox's mail while another node's intake of another mailbox is open", async () => {
    const [a, b] = stores as [SqlStore, SqlStore];
    const other = await item(mail('sales@c', 'bob@customer.example'), 'sales');
    const results = await nodes[1]!.transaction(
      async (tx) => {
        await tx.run('readiness-write-probe');
        return unblocked('the intake of support', a.takeBatch([await item(mail('support@c'), 'support')], policy()));
      },
      { keys: intakeKeys([other]) },
    );
    expect(results.map((r) => r.outcome)).toEqual(['taken']);
    expect((await b.listOutbox()).length).toBe(1);
  }, 60_000);

  it('makes one ticket of a message taken for two mailboxes on two nodes at once', async () => {
    const [a, b] = stores as [SqlStore, SqlStore];
    const raw = mail('both@c');
    const [[first], [second]] = await Promise.all([
      a.takeBatch([await item(raw, 'support')], policy()),
      b.takeBatch([await item(raw, 'sales')], policy()),
    ]);
    expect([first!.outcome, second!.outcome].sort()).toEqual(['duplicate', 'taken']);
    expect(second!.ref ?? first!.ref).toBe(first!.ref ?? second!.ref);
    expect((await a.listOutbox()).length).toBe(1);
  }, 60_000);

  it('runs an exclusive transaction alone: it waits for an open intake and the intake waits for it', async () => {
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inIntake = new Promise<void>((resolve) => (entered = resolve));
    const intake = nodes[0]!.transaction(
      async () => {
        entered();
        await gate;
        order.push('intake');
      },
      { keys: ['mailbox:support'] },
    );
    await inIntake;
    const exclusive = nodes[1]!.transaction(async () => {
      order.push('exclusive');
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    release();
    await Promise.all([intake, exclusive]);
    expect(order).toEqual(['intake', 'exclusive']);
  }, 60_000);
});

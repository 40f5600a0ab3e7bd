import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { MailboxLeases, nodeIdentity } from '../../src/daemon/mailbox-leases.js';
import { LeaseStore } from '../../src/store/lease-store.js';
import { SqlOutboxQueue } from '../../src/store/outbox-queue.js';
import { applyMigrations } from '../../src/store/migrate.js';
import { PostgresEngine } from '../../src/store/postgres-engine.js';
import type { SqlEngine } from '../../src/store/sql-engine.js';
import { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

const MAILBOXES = Array.from({ length: 20 }, (_, i) => `box${String(i).padStart(2, '0')}`);
const LEASE_MS = 15_000;

interface EngineFactory {
  name: string;
  /** A fresh migrated database, opened as many times as asked: one engine per node. */
  database(): Promise<() => Promise<SqlEngine>>;
  teardown(): Promise<void>;
}

let server: PostgresServer | undefined;
const dirs: string[] = [];

const factories: EngineFactory[] = [
  {
    name: 'sqlite',
    async database() {
      const dir = mkdtempSync(join(tmpdir(), 'ticketd-leases-'));
      dirs.push(dir);
      const path = join(dir, 'db.sqlite');
      return async () => {
        const engine = new SqliteEngine(path);
        await applyMigrations(engine);
        return engine;
      };
    },
    async teardown() {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  },
  {
    name: 'postgres',
    async database() {
      server ??= await startPostgres();
      const url = await server.createDatabase();
      return async () => {
        const engine = new PostgresEngine({ url });
        await applyMigrations(engine);
        return engine;
      };
    },
    async teardown() {
      await server?.stop();
    },
  },
];

describe.each(factories)('mailbox leases on $name', (factory) => {
  const clock = fixedClock('2026-03-02T10:00:00Z');
  const engines: SqlEngine[] = [];
  let open: () => Promise<SqlEngine>;
  /** Which node watches each mailbox now, as the workers would; a second watcher is the failure this guards against. */
  const watching = new Map<string, string>();
  const dead = new Set<string>();
  const overlaps: string[] = [];
  /** Every mailbox a node stopped watching, by node incarnation. */
  const released = new Map<string, string[]>();

  /** `stopped` holds up each of the node's workers from stopping, as one finishing a batch would; `store` replaces its lease store. */
  async function node(
    name: string,
    opts: { stopped?: Promise<void>; store?: (engine: SqlEngine) => LeaseStore } = {},
  ): Promise<MailboxLeases> {
    const engine = await open();
    engines.push(engine);
    const leases: MailboxLeases = new MailboxLeases({
      store: opts.store?.(engine) ?? new LeaseStore(engine),
      node: nodeIdentity(name),
      mailboxes: MAILBOXES,
      clock,
      logger: silentLogger(),
      leaseMs: LEASE_MS,
      onAcquire(mailbox) {
        const other = watching.get(mailbox);
        if (other !== undefined && !dead.has(other))
          overlaps.push(`${mailbox} taken by ${leases.node.incarnation} while ${other} watches it`);
        watching.set(mailbox, leases.node.incarnation);
      },
      async onRelease(mailbox) {
        released.set(leases.node.incarnation, [...(released.get(leases.node.incarnation) ?? []), mailbox]);
        await opts.stopped;
        if (watching.get(mailbox) === leases.node.incarnation) watching.delete(mailbox);
      },
    });
    return leases;
  }

  /** `beat` resolved, or a failure once a beat has waited far longer than its queries take. */
  async function promptly(beat: Promise<void>): Promise<void> {
    let timer!: NodeJS.Timeout;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the heartbeat waited for a worker to stop')), 15_000);
    });
    await Promise.race([beat, late]).finally(() => clearTimeout(timer));
  }

  const counts = (nodes: MailboxLeases[]) => nodes.map((n) => n.holding().length);
  const rounds = async (nodes: MailboxLeases[], n = 3) => {
    for (let i = 0; i < n; i++) for (const node of nodes) await node.beat();
  };

  beforeAll(async () => {
    open = await factory.database();
  });

  afterAll(async () => {
    for (const engine of engines) await engine.close();
    await factory.teardown();
  });

  it("spreads the mailboxes, moves a dead node's to the live ones, and takes them back after a restart", async () => {
    const a = await node('node-a');
    await a.join();
    expect(counts([a])).toEqual([20]);

    const b = await node('node-b');
    const c = await node('node-c');
    await b.join();
    await c.join();
    await rounds([a, b, c]);
    expect(counts([a, b, c]).sort()).toEqual([6, 7, 7]);
    expect(new Set([...a.holding(), ...b.holding(), ...c.holding()]).size).toBe(20);

    // c stops beating (killed): once its heartbeat and leases expire, a and b share its mailboxes
    dead.add(c.node.incarnation);
    clock.advance(LEASE_MS / 3);
    await rounds([a, b], 1);
    expect(counts([a, b]).reduce((x, y) => x + y)).toBe(14);
    // a and b go on beating every third of a lease, c does not
    for (let i = 0; i < 4; i++) {
      clock.advance(LEASE_MS / 3);
      await rounds([a, b], 1);
    }
    await rounds([a, b]);
    expect(counts([a, b])).toEqual([10, 10]);

    // restarted under the same name, c gets a new incarnation and its share back
    const c2 = await node('node-c');
    await c2.join();
    await rounds([a, b, c2]);
    expect(counts([a, b, c2]).sort()).toEqual([6, 7, 7]);

    // a clean stop hands its mailboxes over at once, without waiting out the
    // lease; the node lives on until it leaves, for its outbox claims in flight
    await a.stop();
    const probe = new LeaseStore(engines[0]!);
    expect(await probe.liveIncarnations(clock.now().getTime())).toContain(a.node.incarnation);
    await rounds([b, c2], 2);
    expect(counts([b, c2])).toEqual([10, 10]);
    await a.leave();
    expect(await probe.liveIncarnations(clock.now().getTime())).not.toContain(a.node.incarnation);
    await b.stop();
    await c2.stop();
    expect(overlaps).toEqual([]);
  });

  it('an outbox claim lives as long as its node: a restarted node sends what its killed predecessor claimed at once', async () => {
    const engine = await open();
    engines.push(engine);
    const sql = `
      INSERT INTO messages (id, mailbox, direction, kind, message_id, created_at) VALUES
        (901, 'box00', 'out', 'ack', 'q1@example.com', 0), (902, 'box00', 'out', 'ack', 'q2@example.com', 0);
      INSERT INTO outbox (message_row, mailbox, envelope_from, envelope_to, status, next_attempt_at, created_at) VALUES
        (901, 'box00', 'box00@example.com', '["a@example.org"]', 'pending', 0, 0),
        (902, 'box00', 'box00@example.com', '["b@example.org"]', 'pending', 0, 0);`;
    if (engine instanceof SqliteEngine) engine.db.exec(sql);
    else await (engine as PostgresEngine).pool.query(sql);
    const queue = new SqlOutboxQueue(engine);
    const leases = new LeaseStore(engine);
    const now = clock.now().getTime();
    const OUTBOX_LEASE_MS = 120_000;

    const first = nodeIdentity('node-q');
    await leases.register(first, now, now + LEASE_MS);
    const claimed = (await queue.claimOutbox(now, 10, OUTBOX_LEASE_MS, 0, first.incarnation)).map((j) => j.messageRow).sort();
    expect(claimed).toEqual([901, 902]);

    // while the claimant beats, its claim holds against every other node
    const other = nodeIdentity('node-r');
    await leases.register(other, now, now + LEASE_MS);
    expect(await queue.claimOutbox(now + 1_000, 10, OUTBOX_LEASE_MS, 0, other.incarnation)).toEqual([]);

    // killed and restarted under the same name: the dead run's claims are due at once, not in two minutes
    const second = nodeIdentity('node-q');
    await leases.register(second, now + 2_000, now + 2_000 + LEASE_MS);
    const reclaimed = (await queue.claimOutbox(now + 2_000, 10, OUTBOX_LEASE_MS, 0, second.incarnation))
      .map((j) => j.messageRow)
      .sort();
    expect(reclaimed).toEqual([901, 902]);
    expect(await queue.claimOutbox(now + 3_000, 10, OUTBOX_LEASE_MS, 0, other.incarnation)).toEqual([]);
  });

  it('a node whose name another process took lets go of every mailbox', async () => {
    const first = await node('node-x');
    await first.join();
    const held = first.holding().length;
    expect(held).toBeGreaterThan(0);
    // a restart after a crash: the predecessor no longer runs, its leases pass at once
    dead.add(first.node.incarnation);
    const second = await node('node-x');
    await second.join();
    await first.beat();
    expect(first.holding()).toEqual([]);
    await rounds([second], 2);
    expect(second.holding().length).toBe(held);
    await second.stop();
    expect(overlaps).toEqual([]);
  });

  it('goes on beating while a worker it hands over is still stopping, and nobody takes that mailbox before it has stopped', async () => {
    open = await factory.database();
    let stopped!: () => void;
    const a = await node('node-s', { stopped: new Promise<void>((resolve) => (stopped = resolve)) });
    await a.join();
    const b = await node('node-t');
    await b.join();
    expect(counts([a, b])).toEqual([20, 0]);
    // a hands half over to b; its workers take longer than two leases to finish their batches
    const handover = a.beat();
    for (let i = 0; i < 6; i++) {
      clock.advance(LEASE_MS / 3);
      await promptly(a.beat());
      await b.beat();
    }
    expect(counts([a, b])).toEqual([10, 0]);
    stopped();
    await handover;
    await rounds([a, b], 1);
    expect(counts([a, b])).toEqual([10, 10]);
    await a.stop();
    await b.stop();
    expect(overlaps).toEqual([]);
  });

  it('watches its mailboxes again when a late renewal made it let go and nobody took them meanwhile', async () => {
    open = await factory.database();
    let unreachable = false;
    const a = await node('node-u', {
      // the database out of reach for a while, then back
      store: (engine) =>
        new (class extends LeaseStore {
          override beat(...args: Parameters<LeaseStore['beat']>): Promise<boolean> {
            return unreachable ? Promise.reject(new Error('connection refused')) : super.beat(...args);
          }
        })(engine),
    });
    await a.join();
    expect(counts([a])).toEqual([20]);
    unreachable = true;
    clock.advance(LEASE_MS - a.beatMs);
    await a.beat();
    expect(counts([a])).toEqual([0]);
    unreachable = false;
    await a.beat();
    expect(counts([a])).toEqual([20]);
    await a.stop();
    expect(overlaps).toEqual([]);
  });

  it('lets go only of leases a stuck renewal cannot keep, not when its first beat comes a slow start after joining', async () => {
    open = await factory.database();
    // the timer by hand; the database and the clock as they are
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const a = await node('node-w');
      await a.start();
      expect(counts([a])).toEqual([20]);
      // starting the twenty IMAP workers kept the node busy: its first beat
      // comes later than usual, still well inside the lease it renews
      clock.advance(LEASE_MS - a.beatMs);
      vi.advanceTimersByTime(a.beatMs);
      await a.beat();
      expect(counts([a])).toEqual([20]);
      expect(released.get(a.node.incarnation) ?? []).toEqual([]);
      await a.stop();
      await a.leave();
    } finally {
      vi.useRealTimers();
    }
    expect(overlaps).toEqual([]);
  });

  it('renews its heartbeat while it is still taking its first mailboxes', async () => {
    open = await factory.database();
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const engine = await open();
      engines.push(engine);
      const a0 = clock.now().getTime();
      // A beat the timer started commits in real time while the clock stands
      // still: each take waits for it, so the test does not race the
      // database. Without a timer no beat comes: past one wait, none is awaited.
      let beating = true;
      const renewedSince = async (at: number) => {
        for (let tries = 0; beating && tries < 100; tries++) {
          const row = (await new LeaseStore(engine).nodes()).find((n) => n.name === 'node-v');
          if (row !== undefined && row.beatAt >= at) return;
          await new Promise((r) => setTimeout(r, 50));
        }
        beating = false;
      };
      const a = await node('node-v', {
        // each take starts an IMAP worker; on a busy machine twenty of them take longer than the lease
        store: () =>
          new (class extends LeaseStore {
            override async take(...args: Parameters<LeaseStore['take']>): Promise<boolean> {
              clock.advance(LEASE_MS / 10);
              vi.advanceTimersByTime(LEASE_MS / 10);
              await renewedSince(clock.now().getTime() - LEASE_MS / 3);
              return super.take(...args);
            }
          })(engine),
      });
      await a.start();
      const now = clock.now().getTime();
      expect(now - a0).toBeGreaterThanOrEqual(LEASE_MS);
      expect(await new LeaseStore(engine).liveIncarnations(now)).toContain(a.node.incarnation);
      await a.stop();
      await a.leave();
    } finally {
      vi.useRealTimers();
    }
  });
});

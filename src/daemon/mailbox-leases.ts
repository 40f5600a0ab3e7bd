import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { DEFAULT_LEASE_MS } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { LeaseRow, LeaseStore, NodeIdentity } from '../store/lease-store.js';

/** A node's identity for one run: its configured name (the host name by default) and a fresh incarnation. */
export function nodeIdentity(name: string = os.hostname(), pid = process.pid): NodeIdentity {
  return { name, incarnation: `${name}/${pid}/${randomBytes(6).toString('hex')}`, host: os.hostname(), pid };
}

export interface LeasePlan {
  /** Mailboxes free (never leased, expired, or held by a dead node) this node should take, best first. */
  take: string[];
  /** Mailboxes this node holds beyond its share, to hand over now that more nodes run. */
  release: string[];
  /** This node's fair share: the mailboxes divided by the live nodes, rounded up. */
  share: number;
}

/**
 * Which mailboxes this node should take and give up. Each node aims at the
 * same share, so the mailboxes spread over the live nodes; each ranks the
 * mailboxes by a hash of its own incarnation, so nodes starting at once go
 * for different ones first instead of all racing for the same.
 */
export function planLeases(o: {
  mailboxes: readonly string[];
  me: string;
  live: readonly string[];
  /** Live nodes that are stopping: their leases hold until given back, but they take no share. */
  stopping?: readonly string[];
  leases: readonly LeaseRow[];
  now: number;
}): LeasePlan {
  const liveSet = new Set(o.live);
  liveSet.add(o.me);
  const valid = new Map(o.leases.filter((l) => l.expiresAt > o.now && liveSet.has(l.holder)).map((l) => [l.mailbox, l.holder]));
  const configured = new Set(o.mailboxes);
  const sharing = [...liveSet].filter((n) => n === o.me || !o.stopping?.includes(n)).length;
  const share = Math.ceil(o.mailboxes.length / sharing);
  const rank = (mailbox: string) => createHash('sha256').update(`${o.me}\0${mailbox}`).digest('hex');
  const byRank = (a: string, b: string) => (rank(a) < rank(b) ? -1 : 1);
  const mine = [...valid]
    .filter(([mailbox, holder]) => holder === o.me && configured.has(mailbox))
    .map(([mailbox]) => mailbox)
    .sort(byRank);
  const free = o.mailboxes.filter((m) => !valid.has(m)).sort(byRank);
  return {
    take: free.slice(0, Math.max(0, share - mine.length)),
    release: mine.slice(share),
    share,
  };
}

export interface MailboxLeasesOptions {
  store: LeaseStore;
  node: NodeIdentity;
  /** The IMAP mailboxes of the shared config. */
  mailboxes: readonly string[];
  clock: Clock;
  logger: Logger;
  /** A dead node's mailboxes pass to the others within about this long plus one heartbeat. */
  leaseMs?: number | undefined;
  /** Starts watching a mailbox this node now holds. */
  onAcquire(mailbox: string): void;
  /** Stops watching a mailbox; the lease is given back only once this resolves, so two nodes never watch it at once. */
  onRelease(mailbox: string): Promise<void>;
}

/**
 * The node's heartbeat and its mailbox leases. Every beat renews the node and
 * its leases, then takes free mailboxes up to its share and hands over any
 * beyond it. A node that cannot renew (the database is unreachable) stops
 * watching its mailboxes before its leases can run out, so another node
 * taking them never overlaps with it.
 */
export class MailboxLeases {
  readonly node: NodeIdentity;
  readonly leaseMs: number;
  readonly beatMs: number;
  private readonly held = new Set<string>();
  /** Mailboxes whose worker is stopping: not watched any more, their lease not yet given back. */
  private readonly stopping = new Set<string>();
  private lastBeat = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The renewal in flight: renewals never overlap, a slow one delays the next. */
  private renewing: Promise<boolean> | null = null;
  /** The rebalance in flight (taking and handing over mailboxes), which may wait for an IMAP worker to stop. */
  private rebalancing: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly o: MailboxLeasesOptions) {
    this.node = o.node;
    this.leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
    // three beats per lease: one missed beat (a slow query, a GC pause) costs nothing
    this.beatMs = Math.max(100, Math.floor(this.leaseMs / 3));
  }

  /** The mailboxes this node watches now, for `/readyz`. */
  holding(): string[] {
    return [...this.held].sort();
  }

  /**
   * Joins the nodes and beats every `beatMs` until stop(). The timer starts
   * before the first mailboxes are taken: taking them starts their IMAP
   * workers, which on a busy machine took longer than the lease, and the
   * node's row would have expired before its first renewal.
   */
  async start(): Promise<void> {
    await this.register();
    this.schedule();
    await this.beat();
  }

  /** Enters the node and takes its first mailboxes, without a timer (tests beat by hand). */
  async join(): Promise<void> {
    await this.register();
    await this.beat();
  }

  private async register(): Promise<void> {
    const now = this.o.clock.now().getTime();
    const { replaced } = await this.o.store.register(this.node, now, now + this.leaseMs);
    this.lastBeat = now;
    if (replaced !== null) {
      this.o.logger.warn(
        { code: 'NODE_PREDECESSOR_REPLACED', node: this.node.name, replaced },
        'node name was still alive under another run: a crashed predecessor, or a second process with the same node name',
      );
    }
  }

  /**
   * One heartbeat; the timer calls it, tests call it with a fixed clock. It
   * renews the node and its leases, then rebalances, unless the last beat's
   * rebalance is still waiting for an IMAP worker to stop: then it renews
   * only. A worker finishing its batch can take longer than a lease, and a
   * heartbeat that waited for it would let the node's row expire, so that
   * the other nodes took every mailbox it still watches.
   */
  async beat(): Promise<void> {
    this.renewing ??= this.renew().finally(() => {
      this.renewing = null;
    });
    if (!(await this.renewing) || this.rebalancing !== null || this.stopped) return;
    this.rebalancing = this.rebalance().finally(() => {
      this.rebalancing = null;
    });
    await this.rebalancing;
  }

  /** Renews the node's row and its leases; false when it could not (and what it held was let go, if it had to be). */
  private async renew(): Promise<boolean> {
    const now = this.o.clock.now().getTime();
    try {
      if (!(await this.o.store.beat(this.node, now, now + this.leaseMs))) {
        this.o.logger.error(
          { code: 'NODE_NAME_TAKEN', node: this.node.name },
          'another process took over this node name: letting go of every mailbox',
        );
        await this.releaseAll(false);
        return false;
      }
      this.lastBeat = now;
      return true;
    } catch (err) {
      this.o.logger.warn(
        { code: 'NODE_HEARTBEAT_FAILED', node: this.node.name, err: (err as Error).message },
        'heartbeat failed',
      );
      await this.watchdog();
      return false;
    }
  }

  /**
   * Takes free mailboxes up to the node's share, then hands over what it
   * holds beyond it. Taking comes first, so a dead node's mailboxes are not
   * kept waiting by a worker of ours that is slow to stop.
   */
  private async rebalance(): Promise<void> {
    const now = this.o.clock.now().getTime();
    try {
      const [live, stopping, leases] = await Promise.all([
        this.o.store.liveIncarnations(now),
        this.o.store.stoppingIncarnations(now),
        this.o.store.leases(),
      ]);
      const drops: Promise<void>[] = [];
      // a lease taken from under us (we were too slow to renew) is no longer ours
      for (const mailbox of [...this.held]) {
        if (!leases.some((l) => l.mailbox === mailbox && l.holder === this.node.incarnation))
          drops.push(this.drop(mailbox, false));
      }
      // A lease the database says is ours, renewed with the others, but that
      // nobody here watches (let go when a renewal came late, then renewed
      // before anyone took it): watched again, or it would stay orphaned for
      // as long as this node lives.
      for (const l of leases) {
        const orphan = l.holder === this.node.incarnation && l.expiresAt > now && !this.held.has(l.mailbox);
        if (orphan && !this.stopping.has(l.mailbox) && this.o.mailboxes.includes(l.mailbox)) this.watch(l.mailbox);
      }
      const plan = planLeases({ mailboxes: this.o.mailboxes, me: this.node.incarnation, live, stopping, leases, now });
      for (const mailbox of plan.take) {
        if (this.stopped) break;
        if ((await this.o.store.take(mailbox, this.node.incarnation, now, now + this.leaseMs)) && !this.held.has(mailbox))
          this.watch(mailbox);
      }
      // the leases handed over stay ours, renewed, until each worker has stopped
      for (const mailbox of plan.release) drops.push(this.drop(mailbox, true));
      await Promise.all(drops);
    } catch (err) {
      this.o.logger.warn(
        { code: 'NODE_HEARTBEAT_FAILED', node: this.node.name, err: (err as Error).message },
        'heartbeat failed',
      );
    }
  }

  /**
   * Past a lease minus one beat since the last renewal, another node may take
   * our mailboxes any moment: stop watching them first. Checked by the timer
   * too, so a heartbeat stuck on an unreachable database cannot delay it.
   */
  private async watchdog(): Promise<void> {
    if (this.held.size > 0 && this.o.clock.now().getTime() - this.lastBeat >= this.leaseMs - this.beatMs) {
      this.o.logger.error(
        { code: 'NODE_LEASES_EXPIRING', node: this.node.name },
        'could not renew mailbox leases in time: stopped watching every mailbox',
      );
      await this.releaseAll(false);
    }
  }

  private watch(mailbox: string): void {
    this.held.add(mailbox);
    this.o.logger.info({ code: 'MAILBOX_LEASE_TAKEN', mailbox, node: this.node.name }, 'watching mailbox');
    this.o.onAcquire(mailbox);
  }

  private async drop(mailbox: string, giveBack: boolean): Promise<void> {
    if (!this.held.delete(mailbox)) return;
    this.o.logger.info(
      { code: 'MAILBOX_LEASE_RELEASED', mailbox, node: this.node.name, handedOver: giveBack },
      'no longer watching mailbox',
    );
    this.stopping.add(mailbox);
    try {
      await this.o.onRelease(mailbox);
      if (giveBack) await this.o.store.release(mailbox, this.node.incarnation).catch(() => undefined);
    } finally {
      this.stopping.delete(mailbox);
    }
  }

  private async releaseAll(giveBack: boolean): Promise<void> {
    for (const mailbox of [...this.held]) await this.drop(mailbox, giveBack);
  }

  /** An interval rather than a chain of timeouts: a renewal stuck on the database must not stop the watchdog. */
  private schedule(): void {
    if (this.stopped) return;
    this.timer = setInterval(() => {
      // Only a renewal still under way since the last tick is stuck; judged
      // before it, a node busy starting its workers (the first tick comes a
      // beat after the join finished, not after its renewal) let go of every
      // mailbox it had just taken.
      if (this.renewing !== null) void this.watchdog();
      void this.beat();
    }, this.beatMs);
    this.timer.unref();
  }

  /**
   * Stops every worker and gives back the leases, so other nodes take the
   * mailboxes over at once. The node itself beats on until leave(): its
   * outbox and SLA claims count only while it lives, and a node that died
   * here would let any claim, its own included, send its mail in flight again.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.o.store.stopping(this.node.incarnation, this.o.clock.now().getTime()).catch(() => undefined);
    await this.renewing;
    await this.rebalancing;
    await this.releaseAll(true);
  }

  /** Marks the node dead, once nothing it claimed is still under way: what it left claimed is due at once. */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.renewing;
    await this.rebalancing;
    await this.o.store.leave(this.node.incarnation, this.o.clock.now().getTime()).catch(() => undefined);
  }
}

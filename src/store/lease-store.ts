import type { SqlEngine } from './sql-engine.js';

export interface NodeIdentity {
  /** Unique among the nodes sharing a database; stable across restarts (the host name by default). */
  name: string;
  /** This run of the node; claims and leases name it, so a restart disowns what the dead run held. */
  incarnation: string;
  host: string;
  pid: number;
}

export interface LeaseRow {
  mailbox: string;
  holder: string;
  expiresAt: number;
}

export interface NodeRow {
  name: string;
  incarnation: string;
  host: string;
  pid: number;
  startedAt: number;
  beatAt: number;
  expiresAt: number;
}

/** The records behind node heartbeats and mailbox leases; the lease rules are in daemon/mailbox-leases.ts. */
export class LeaseStore {
  constructor(private readonly engine: SqlEngine) {}

  /**
   * Enters the node under its name with a new incarnation. Returns the
   * incarnation it replaced while that one still counted as alive: a crashed
   * predecessor, or another process using the same name.
   */
  /** One row by its key: nothing to wait for beyond its row lock. */
  async register(node: NodeIdentity, now: number, expiresAt: number): Promise<{ replaced: string | null }> {
    return this.engine.transaction(async (tx) => {
      const before = await tx.get<{ incarnation: string; expiresAt: number }>('node-by-name', { name: node.name });
      await tx.run('node-register', { ...node, now, expiresAt });
      return { replaced: before !== undefined && before.expiresAt > now ? before.incarnation : null };
    }, 'rows');
  }

  /**
   * Renews the node and every lease it holds; false when another process has
   * taken the node's name. A 'rows' transaction: it must not queue behind the
   * store's write transactions (the engine keeps connections apart for such),
   * or a busy node would miss its beat.
   */
  async beat(node: NodeIdentity, now: number, expiresAt: number): Promise<boolean> {
    return this.engine.transaction(async (tx) => {
      const beat = await tx.run('node-beat', { name: node.name, incarnation: node.incarnation, now, expiresAt });
      if (beat.changes === 0) return false;
      await tx.run('leases-renew', { incarnation: node.incarnation, expiresAt });
      return true;
    }, 'rows');
  }

  async leave(incarnation: string, now: number): Promise<void> {
    await this.engine.run('node-leave', { incarnation, now });
  }

  /** The node is stopping: the others take its mailboxes as it gives them back, while its claims still count. */
  async stopping(incarnation: string, now: number): Promise<void> {
    await this.engine.run('node-stopping', { incarnation, now });
  }

  async liveIncarnations(now: number): Promise<string[]> {
    return (await this.engine.all<{ incarnation: string }>('nodes-live', { now })).map((r) => r.incarnation);
  }

  /** Live nodes that are stopping: they take no share of the mailboxes. */
  async stoppingIncarnations(now: number): Promise<string[]> {
    return (await this.engine.all<{ incarnation: string }>('nodes-live-stopping', { now })).map((r) => r.incarnation);
  }

  nodes(): Promise<NodeRow[]> {
    return this.engine.all<NodeRow>('nodes-all');
  }

  leases(): Promise<LeaseRow[]> {
    return this.engine.all<LeaseRow>('leases-all');
  }

  /** True when this node now holds the mailbox. */
  async take(mailbox: string, incarnation: string, now: number, expiresAt: number): Promise<boolean> {
    return (await this.engine.run('lease-take', { mailbox, incarnation, now, expiresAt })).changes === 1;
  }

  async release(mailbox: string, incarnation: string): Promise<void> {
    await this.engine.run('lease-release', { mailbox, incarnation });
  }
}

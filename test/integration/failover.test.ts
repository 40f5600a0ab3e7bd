// Several ticketd nodes on one PostgreSQL database, two of them killed in the
// middle of a backlog: every message still becomes exactly one ticket, every
// ticket gets its acknowledgement (a kill re-sends what the killed node had
// sent but not yet marked sent), every mailbox is emptied and ends up held by
// the live node. Prints its figures.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startSmtpCapture, type SmtpCapture } from '../harness/smtp-capture.js';
import { CLI, customerMail } from '../harness/ticketd-env.js';

const NODES = 3;
const MAILBOXES = 20;
const MESSAGES = 2_000;
const LEASE_MS = 6_000;
const OUTBOX_BATCH = 50;
const KILL_AT = [0.25, 0.6].map((share) => Math.round(share * MESSAGES));

const mailbox = (i: number) => `box${String(i).padStart(2, '0')}`;
const address = (i: number) => `${mailbox(i)}@example.com`;

interface Node {
  name: string;
  child: ChildProcess;
  exited: Promise<unknown>;
}

describe('three nodes, two killed mid-backlog', () => {
  // A soak: three daemons, twenty mailboxes and 2,000 messages keep both
  // cores busy for about a minute. It runs with TICKETD_SOAK=1 (npm run
  // test:soak) rather than in every npm test: run last in a whole suite it
  // failed once (the second victim's mailboxes did not pass to the last node
  // within 240 s) where ten runs on their own passed, and until that is
  // explained it stays out of CI (docs/postgres.md, Failover figures).
  if (process.env.TICKETD_SOAK !== '1') {
    const why = 'failover soak skipped: set TICKETD_SOAK=1 to run it (npm run test:soak)';
    it('takes every message exactly once, with one acknowledgement each, and the live node holds every mailbox', (test) => {
      process.stdout.write(`${why}\n`);
      test.skip(why);
    });
    return;
  }
  let dovecot: DovecotServer;
  let smtp: SmtpCapture;
  let postgres: PostgresServer;
  let url: string;
  let dir: string;
  const nodes: Node[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ticketd-failover-'));
    dovecot = await startDovecot({ users: Array.from({ length: MAILBOXES }, (_, i) => ({ user: address(i), pass: 'secret' })) });
    smtp = await startSmtpCapture();
    postgres = await startPostgres();
    url = await postgres.createDatabase();
  }, 120_000);

  afterAll(async () => {
    for (const node of nodes) node.child.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
    await Promise.allSettled([dovecot?.stop(), smtp?.stop(), postgres?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  function start(name: string): Node {
    const configPath = join(dir, `${name}.json`);
    writeFileSync(
      configPath,
      JSON.stringify({
        database: url,
        dataDir: './data',
        publicUrl: 'http://127.0.0.1:8080',
        http: { enabled: false },
        cluster: { nodeName: name, leaseMs: LEASE_MS },
        smtp: {
          host: '127.0.0.1',
          port: smtp.port,
          secure: false,
          from: 'ACME Support <box00@example.com>',
          sendTimeoutMs: 5000,
        },
        outbox: { pollIntervalMs: 200, batchSize: OUTBOX_BATCH },
        mailboxes: Array.from({ length: MAILBOXES }, (_, i) => ({
          name: mailbox(i),
          address: address(i),
          referencePrefix: 'ACME',
          imap: {
            host: dovecot.host,
            port: dovecot.port,
            secure: false,
            auth: { user: address(i), pass: 'secret' },
            pollIntervalMs: 500,
            batchSize: 25,
          },
        })),
      }),
    );
    // TICKETD_SOAK_LOGS=DIR keeps each node's log there, to read after a failed run
    const logs = process.env.TICKETD_SOAK_LOGS;
    const out = logs ? openSync(join(logs, `${name}.log`), 'a') : 'ignore';
    const child = spawn(process.execPath, [CLI, 'start', '--config', configPath], { stdio: ['ignore', out, out] });
    const node = { name, child, exited: new Promise((resolve) => child.once('exit', resolve)) };
    nodes.push(node);
    return node;
  }

  async function holders(): Promise<Map<string, string>> {
    const rows = await postgres
      .query<{ mailbox: string; name: string }>(
        'SELECT l.mailbox, n.name FROM mailbox_leases l JOIN nodes n ON n.incarnation = l.holder WHERE n.expires_at > $1 AND l.expires_at > $1',
        [Date.now()],
        new URL(url).pathname.slice(1),
      )
      // the nodes start together and migrate an empty database first
      .catch((err: { code?: string }) => (err.code === '42P01' ? [] : Promise.reject(err)));
    return new Map(rows.map((r) => [r.mailbox, r.name]));
  }

  /** What a timeout reports: each node alive or how it ended, and who holds which mailbox. */
  async function situation(): Promise<string> {
    const states = nodes.map((n) =>
      n.child.exitCode === null && n.child.signalCode === null
        ? `${n.name} running`
        : `${n.name} ended (${n.child.signalCode ?? n.child.exitCode})`,
    );
    const held = await holders().catch((err: Error) => new Map([['?', err.message]]));
    const byNode = new Map<string, string[]>();
    for (const [mailbox, name] of held) byNode.set(name, [...(byNode.get(name) ?? []), mailbox]);
    const holding = [...byNode].map(([name, boxes]) => `${name}: ${boxes.length}`).join(', ');
    return `${states.join(', ')}; live leases ${held.size} of ${MAILBOXES} (${holding || 'none'})`;
  }

  async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 240_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; ${await situation()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('takes every message exactly once, with one acknowledgement each, and the live node holds every mailbox', async () => {
    for (let n = 0; n < MESSAGES; n++) {
      await dovecot.deliverToMaildir(
        address(n % MAILBOXES),
        customerMail({
          to: address(n % MAILBOXES),
          from: `c${n}@customer.example`,
          subject: `Backlog ${n}`,
          messageId: `m${n}@customer.example`,
        }),
      );
    }
    const started = Date.now();
    const running = Array.from({ length: NODES }, (_, i) => start(`node-${i}`));

    const spread = await until('the mailboxes to spread over the nodes', async () => {
      const held = await holders();
      return held.size === MAILBOXES ? held : undefined;
    });
    const perNode = running.map((n) => [...spread.values()].filter((name) => name === n.name).length);

    const takeovers: number[] = [];
    const victimsHeld: number[] = [];
    const killed: Node[] = [];
    for (const [k, at] of KILL_AT.entries()) {
      await until(`${at} acknowledgements`, () => (smtp.messages.length >= at ? true : undefined));
      const victim = running[k]!;
      victimsHeld.push([...(await holders()).values()].filter((name) => name === victim.name).length);
      victim.child.kill('SIGKILL');
      await victim.exited;
      killed.push(victim);
      const killedAt = Date.now();
      // its mailboxes pass to the live nodes once its heartbeat lapses
      await until(`the mailboxes of ${victim.name} to pass to live nodes`, async () => {
        const held = await holders();
        return held.size === MAILBOXES && ![...held.values()].some((name) => killed.some((k) => k.name === name))
          ? true
          : undefined;
      });
      takeovers.push(Date.now() - killedAt);
    }

    // every message acknowledged, counted by recipient: a re-sent mail must not stand in for one never sent
    await until('an acknowledgement to every customer', () =>
      new Set(smtp.messages.map((m) => m.envelope.to[0])).size >= MESSAGES ? true : undefined,
    );
    const drained = Date.now() - started;
    // give a duplicate, if there were one, the time to show up
    await new Promise((r) => setTimeout(r, 2_000));

    const database = new URL(url).pathname.slice(1);
    const [counts] = await postgres.query<{ tickets: string; inbound: string; receipts: string }>(
      `SELECT (SELECT count(*) FROM tickets) AS tickets,
              (SELECT count(*) FROM messages WHERE direction = 'in') AS inbound,
              (SELECT count(*) FROM imap_receipts) AS receipts`,
      [],
      database,
    );
    const acksPerRecipient = new Map<string, Set<string>>();
    for (const m of smtp.messages) {
      const rcpt = m.envelope.to[0]!;
      acksPerRecipient.set(rcpt, (acksPerRecipient.get(rcpt) ?? new Set()).add(m.parsed.messageId!));
    }
    const extraSends = smtp.messages.length - acksPerRecipient.size;
    let left = 0;
    for (let i = 0; i < MAILBOXES; i++) left += (await dovecot.listFolder(address(i), 'INBOX')).length;
    const finalHolders = await holders();

    console.log(
      [
        `failover: ${NODES} nodes, ${MAILBOXES} mailboxes, ${MESSAGES} messages, lease ${LEASE_MS / 1000} s`,
        `  mailboxes per node at start: ${perNode.join(' / ')}`,
        `  killed ${killed.map((n) => n.name).join(' and ')} (SIGKILL) after ${KILL_AT.join(' and ')} acknowledgements`,
        `  takeover after each kill: ${takeovers.map((ms, i) => `${(ms / 1000).toFixed(1)} s (${victimsHeld[i]} mailboxes)`).join(', ')}`,
        `  backlog drained in ${(drained / 1000).toFixed(1)} s (${Math.round(MESSAGES / (drained / 1000))} messages/s end to end)`,
        `  tickets ${counts!.tickets}, inbound messages ${counts!.inbound}, IMAP receipts ${counts!.receipts}`,
        `  acknowledgements ${smtp.messages.length} to ${acksPerRecipient.size} recipients, extra sends ${extraSends}`,
        `  messages left in the INBOXes ${left}; mailboxes held by ${[...new Set(finalHolders.values())].join(', ')}`,
      ].join('\n'),
    );

    expect(Number(counts!.tickets)).toBe(MESSAGES);
    expect(Number(counts!.inbound)).toBe(MESSAGES);
    expect(acksPerRecipient.size).toBe(MESSAGES);
    // a kill in the middle of an SMTP transaction can make the server see the same mail again
    expect([...acksPerRecipient.values()].every((ids) => ids.size === 1)).toBe(true);
    // At least once: a killed node's mail whose end the server had received
    // but whose sent mark was not committed yet goes out again from the node
    // that reclaims it. A node lets one mail at a time be in that state
    // (outbox.maxInDoubt, 1 by default), so each kill re-sends at most one.
    // (Without that limit, five pooled connections each with a mail in flight
    // and one being marked, this soak counted 0 to 12 for its two kills.)
    expect(extraSends).toBeLessThanOrEqual(killed.length);
    expect(left).toBe(0);
    expect(finalHolders.size).toBe(MAILBOXES);
    expect(new Set(finalHolders.values())).toEqual(new Set([running[2]!.name]));
  }, 600_000);
});

// `npm run bench:postgres`: ticketd on PostgreSQL, against a private
// PostgreSQL, a private Dovecot with twenty mailboxes and a capturing SMTP
// server on loopback, with the real daemon as child processes (the nodes).
// Prints one table:
// - backlog: N messages spread over twenty mailboxes, taken by one node and
//   by three nodes (time from the nodes' start to the last IMAP receipt);
// - outbox drain: the same N acknowledgements queued again and sent by one
//   node and by three (first to last arrival at the SMTP server);
// - SLA: the idle tick and the next-due probe at 1,000,000 open tickets,
//   seeded in SQL with generate_series.
//
//   node dist/test/bench/postgres-bench.js [--messages N] [--tickets N]
//
// Sizes also come from BENCH_PG_MESSAGES and BENCH_PG_TICKETS. Every wait is
// bounded: a figure that did not complete in time is reported as such.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseConfig } from '../../src/config/load-config.js';
import { fixedClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { openEngine } from '../../src/store/open-store.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { customerMail } from '../harness/ticketd-env.js';
import { slaConfigJson } from '../unit/sla-fixture.js';
import { startBenchDaemon, type BenchDaemon } from './bench-daemon.js';
import { startBenchSmtp, type BenchSmtp } from './bench-smtp.js';

const MAILBOXES = 20;
const WAIT_MS = 600_000;
const IDLE_RUNS = 30;

const { values: flags } = parseArgs({ options: { messages: { type: 'string' }, tickets: { type: 'string' } } });
const MESSAGES = Number(flags.messages ?? process.env.BENCH_PG_MESSAGES ?? 2_000);
const TICKETS = Number(flags.tickets ?? process.env.BENCH_PG_TICKETS ?? 1_000_000);
for (const [name, n] of Object.entries({ MESSAGES, TICKETS })) {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name}: expected a positive integer`);
}

const mailbox = (i: number) => `box${String(i).padStart(2, '0')}`;
const address = (i: number) => `${mailbox(i)}@example.com`;

interface Row {
  figure: string;
  '1 node': string;
  '3 nodes': string;
}

const dir = mkdtempSync(join(os.tmpdir(), 'ticketd-pgbench-'));
let postgres: PostgresServer | undefined;
let dovecot: DovecotServer | undefined;
let smtp: BenchSmtp | undefined;
const running: BenchDaemon[] = [];

async function count(url: string, sql: string): Promise<number> {
  const rows = await postgres!.query<{ n: string }>(sql, [], new URL(url).pathname.slice(1));
  return Number(rows[0]?.n ?? 0);
}

async function until(check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

function nodeConfig(url: string, name: string): string {
  const path = join(dir, `${name}-${performance.now().toFixed(0)}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      database: url,
      dataDir: join(dir, 'data'),
      publicUrl: 'http://127.0.0.1:8080',
      http: { enabled: false },
      log: { level: 'info' },
      cluster: { nodeName: name },
      smtp: { host: '127.0.0.1', port: smtp!.port, secure: false, from: 'ACME Support <box00@example.com>' },
      outbox: { pollIntervalMs: 200 },
      mailboxes: Array.from({ length: MAILBOXES }, (_, i) => ({
        name: mailbox(i),
        address: address(i),
        referencePrefix: 'ACME',
        imap: {
          host: dovecot!.host,
          port: dovecot!.port,
          secure: false,
          auth: { user: address(i), pass: 'secret' },
          pollIntervalMs: 500,
        },
      })),
    }),
  );
  return path;
}

async function startNodes(url: string, nodes: number): Promise<BenchDaemon[]> {
  const started = await Promise.all(
    Array.from({ length: nodes }, (_, i) => startBenchDaemon({ configPath: nodeConfig(url, `node-${i}`) }, 60_000)),
  );
  running.push(...started);
  return started;
}

async function stopNodes(nodes: BenchDaemon[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
  for (const n of nodes) running.splice(running.indexOf(n), 1);
}

const rate = (n: number, ms: number | null) =>
  ms === null ? `>${WAIT_MS / 1000} s` : `${(ms / 1000).toFixed(1)} s, ${Math.round(n / (ms / 1000))}/s`;

/** The backlog taken by `nodes` nodes, then its acknowledgements queued again and drained by them. */
async function backlogAndDrain(nodes: number): Promise<{ backlog: string; drain: string }> {
  const url = await postgres!.createDatabase();
  // migrated before the nodes start, so no node's figures include it
  await (await openEngine(url)).close();
  for (let n = 0; n < MESSAGES; n++) {
    const to = address(n % MAILBOXES);
    await dovecot!.deliverToMaildir(
      to,
      customerMail({ to, from: `c${n}@customer.example`, subject: `Backlog ${n}`, messageId: `b${nodes}-${n}@customer.example` }),
    );
  }
  const sentBefore = smtp!.arrivals.length;
  const t0 = performance.now();
  let daemons = await startNodes(url, nodes);
  const taken = await until(async () => (await count(url, 'SELECT count(*) AS n FROM imap_receipts')) >= MESSAGES);
  const backlogMs = taken ? performance.now() - t0 : null;
  await smtp!.waitFor(sentBefore + MESSAGES, WAIT_MS);
  await stopNodes(daemons);

  // every acknowledgement due again: the outbox alone, without intake beside it
  await postgres!.query(
    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = 0, sent_at = NULL, claimed_by = NULL",
    [],
    new URL(url).pathname.slice(1),
  );
  const drainFrom = smtp!.arrivals.length;
  daemons = await startNodes(url, nodes);
  const drained = await smtp!.waitFor(drainFrom + MESSAGES, WAIT_MS);
  const arrivals = smtp!.arrivals.slice(drainFrom, drainFrom + MESSAGES);
  const drainMs = drained ? arrivals.at(-1)!.at - arrivals[0]!.at : null;
  await stopNodes(daemons);
  return { backlog: rate(MESSAGES, backlogMs), drain: rate(MESSAGES, drainMs) };
}

/** The SLA engine's idle tick and next-due probe over TICKETS open tickets, none due. */
async function slaIdle(): Promise<{ fill: string; probe: string; idle: string }> {
  const url = await postgres!.createDatabase();
  const now = Date.parse('2026-03-02T10:00:00+01:00');
  const config = parseConfig(
    slaConfigJson(dir, (cfg) => {
      cfg.database = url;
      cfg.dataDir = join(dir, 'sla-data');
    }),
    dir,
  );
  const runtime = await Runtime.open(config, silentLogger(), fixedClock(new Date(now)));
  try {
    const db = new URL(url).pathname.slice(1);
    const fillFrom = performance.now();
    // One statement each: the tickets, and an SLA clock for every one of them
    // falling due over the next weeks, so an idle tick finds nothing due.
    await postgres!.query(
      `INSERT INTO tickets (ref, mailbox, status, subject, requester, reply_to, created_at, updated_at)
       SELECT 'BENCH-' || g, 'support', 'open', 'Subject ' || g, 'c' || g || '@customer.example',
              'c' || g || '@customer.example', $1::bigint, $1::bigint
       FROM generate_series(1, $2::int) AS g`,
      [now, TICKETS],
      db,
    );
    await postgres!.query(
      `INSERT INTO ticket_sla (ticket_id, policy, running_since, fr_target_ms, fr_due_at, res_target_ms, res_due_at,
                               res_started_at, next_due, updated_at)
       SELECT id, 'standard', $1::bigint, 14400000, $1::bigint + 86400000 + (id % 20160) * 60000, 259200000,
              $1::bigint + 259200000, $1::bigint, $1::bigint + 86400000 + (id % 20160) * 60000, $1::bigint
       FROM tickets`,
      [now],
      db,
    );
    await postgres!.query('ANALYZE', [], db);
    const fillMs = performance.now() - fillFrom;
    const median = async (fn: () => Promise<unknown>) => {
      const times: number[] = [];
      for (let i = 0; i < IDLE_RUNS; i++) {
        const t = performance.now();
        await fn();
        times.push(performance.now() - t);
      }
      return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
    };
    const probe = await median(() => runtime.sla.nextDue());
    const idle = await median(async () => {
      const report = await runtime.sla.tick(now);
      if (report.tickets !== 0) throw new Error(`the idle tick handled ${report.tickets} tickets`);
    });
    return { fill: `${(fillMs / 1000).toFixed(1)} s`, probe: `${probe.toFixed(2)} ms`, idle: `${idle.toFixed(2)} ms` };
  } finally {
    await runtime.close();
  }
}

try {
  postgres = await startPostgres();
  dovecot = await startDovecot({ users: Array.from({ length: MAILBOXES }, (_, i) => ({ user: address(i), pass: 'secret' })) });
  smtp = await startBenchSmtp();
  process.stderr.write(`backlog of ${MESSAGES} on one node...\n`);
  const one = await backlogAndDrain(1);
  process.stderr.write(`backlog of ${MESSAGES} on three nodes...\n`);
  const three = await backlogAndDrain(3);
  process.stderr.write(`SLA at ${TICKETS.toLocaleString('en')} open tickets...\n`);
  const sla = await slaIdle();
  const rows: Row[] = [
    { figure: `backlog, ${MESSAGES} messages over ${MAILBOXES} mailboxes`, '1 node': one.backlog, '3 nodes': three.backlog },
    { figure: `outbox drain, ${MESSAGES} acknowledgements`, '1 node': one.drain, '3 nodes': three.drain },
    { figure: `SLA fill, ${TICKETS.toLocaleString('en')} open tickets (generate_series)`, '1 node': sla.fill, '3 nodes': '' },
    { figure: 'SLA next-due probe (median)', '1 node': sla.probe, '3 nodes': '' },
    { figure: 'SLA idle tick, nothing due (median)', '1 node': sla.idle, '3 nodes': '' },
  ];
  const columns = Object.keys(rows[0]!) as (keyof Row)[];
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(
    `PostgreSQL ${(await postgres.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]?.v}, ${os.cpus().length} cores\n`,
  );
  process.stdout.write(`${line(columns)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => r[c]))}\n`);
} finally {
  await Promise.all(running.map((n) => n.stop()));
  await Promise.allSettled([dovecot?.stop(), smtp?.stop(), postgres?.stop()]);
  rmSync(dir, { recursive: true, force: true });
}

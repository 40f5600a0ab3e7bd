// Cost of an SLA pass against the number of open tickets. Not a test: run
// after `npm run build` with `node dist/test/bench/sla-tick-bench.js [N ...]`.
//
// For each size it fills a fresh SQLite file (same pragmas as production,
// synchronous=FULL) with N open tickets and measures the scheduler's probe
// for the next due instant, a pass with nothing due, and passes that each
// find 100 tickets breaching their first-response target (a delay notice
// and a staff warning each). Those come from GROUPS groups of 100 created two
// minutes apart, so each pass handles one group and the median is reported.

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DateTime } from 'luxon';
import { openDesk } from '../unit/sla-fixture.js';
import { dbOf } from '../harness/sqlite-store.js';
import { namedQueriesRun, populate, totalChanges } from './sla-population.js';

const OVERDUE = 100;
const GROUPS = 7;
const IDLE_RUNS = 50;
const MIN = 60_000;

const berlin = (text: string) => DateTime.fromISO(text, { zone: 'Europe/Berlin' }).toMillis();
// Monday. Groups arrive from 09:00 and breach four business hours later;
// the other tickets arrive from 12:00 and breach from 16:00 on.
const GROUPS_FROM = berlin('2026-03-02T09:00');
const BREACH_FROM = berlin('2026-03-02T13:00');
const QUIET = berlin('2026-03-02T10:00');

interface Row {
  tickets: string;
  'fill (s)': string;
  'db (MB)': string;
  'next-due probe (ms)': string;
  'idle tick (ms)': string;
  'idle: due rows/changed': string;
  'tick, 100 due (ms, median)': string;
  'max (ms)': string;
  'rows changed': string;
  'mails queued': string;
  'rss (MB)': string;
  'heap (MB)': string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await fn();
  return { ms: performance.now() - started, result };
}

async function repeat<T>(times: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < times; i++) out.push(await fn(i));
  return out;
}

async function measure(size: number): Promise<Row> {
  // Warnings at breach only, so a group is due exactly once within the run.
  const desk = await openDesk(new Date(BREACH_FROM).toISOString(), {
    patch: (cfg) => (cfg.sla.policies[0].staffWarnings = ['100%']),
  });
  try {
    const rt = desk.runtime;
    const fill = await timed(async () => {
      for (let g = 0; g < GROUPS; g++) await populate(rt, OVERDUE, () => GROUPS_FROM + g * 2 * MIN, `G${g}`);
      await populate(rt, size - GROUPS * OVERDUE, (i) => berlin('2026-03-02T12:00') + (i % 120) * MIN);
    });
    dbOf(rt).pragma('wal_checkpoint(TRUNCATE)');
    const dbBytes = statSync(join(desk.dir, 'ticketd.sqlite')).size;

    const probe = median((await repeat(IDLE_RUNS, () => timed(() => rt.sla.nextDue()))).map((r) => r.ms));

    const before = totalChanges(rt);
    let rowsRead = 0;
    const idle = median(
      await repeat(IDLE_RUNS, async () => {
        const run = await timed(() => namedQueriesRun(rt, () => rt.sla.tick(QUIET)));
        if (run.result.queries.join() !== 'sla-due') throw new Error(`idle tick ran ${run.result.queries.join()}`);
        rowsRead += run.result.result.tickets;
        return run.ms;
      }),
    );
    const idleChanged = totalChanges(rt) - before;

    const beforeDue = totalChanges(rt);
    let queued = 0;
    const dueRuns = await repeat(GROUPS, async (g) => {
      const due = await timed(() => rt.sla.tick(BREACH_FROM + g * 2 * MIN));
      if (due.result.tickets !== OVERDUE)
        throw new Error(`expected ${OVERDUE} due tickets, the pass handled ${due.result.tickets}`);
      queued += due.result.queued.length;
      return due.ms;
    });
    const dueChanged = (totalChanges(rt) - beforeDue) / GROUPS;

    const mem = process.memoryUsage();
    return {
      tickets: size.toLocaleString('en'),
      'fill (s)': (fill.ms / 1000).toFixed(1),
      'db (MB)': (dbBytes / 2 ** 20).toFixed(0),
      'next-due probe (ms)': probe.toFixed(3),
      'idle tick (ms)': idle.toFixed(3),
      'idle: due rows/changed': `${rowsRead}/${idleChanged}`,
      'tick, 100 due (ms, median)': median(dueRuns).toFixed(1),
      'max (ms)': Math.max(...dueRuns).toFixed(1),
      'rows changed': String(dueChanged),
      'mails queued': String(queued / GROUPS),
      'rss (MB)': (mem.rss / 2 ** 20).toFixed(0),
      'heap (MB)': (mem.heapUsed / 2 ** 20).toFixed(0),
    };
  } finally {
    await desk.close();
  }
}

function printTable(rows: Row[]): void {
  const columns = Object.keys(rows[0] ?? {}) as (keyof Row)[];
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padStart(widths[i] ?? 0)).join(' | ')} |`;
  process.stdout.write(`${line(columns)}\n`);
  process.stdout.write(`|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|\n`);
  for (const r of rows) process.stdout.write(`${line(columns.map((c) => r[c]))}\n`);
}

const sizes = process.argv.slice(2).map(Number);
// Compile the templates and warm the code paths first, so the first size is not charged for it.
await measure(GROUPS * OVERDUE + 100);
const rows: Row[] = [];
for (const size of sizes.length > 0 ? sizes : [100_000, 1_000_000]) {
  if (!Number.isInteger(size) || size <= GROUPS * OVERDUE)
    throw new Error(`ticket count must be an integer above ${GROUPS * OVERDUE}`);
  process.stderr.write(`filling ${size.toLocaleString('en')} tickets...\n`);
  rows.push(await measure(size));
}
printTable(rows);

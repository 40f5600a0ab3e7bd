// Throughput and latency of the intake path (parse, classify, thread,
// commit with the acknowledgement queued) against the batch size: what group
// commit buys when a backlog is cleared. Not a test: run after `npm run
// build` with `node dist/test/bench/intake-bench.js [MESSAGES]`.
//
// Each run uses a fresh SQLite file with production pragmas (WAL,
// synchronous=FULL), the shipped templates, and distinct customers so that
// every message opens a ticket and queues an acknowledgement.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../../src/config/load-config.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { takeMessages, type RawMail } from '../../src/pipeline/take-messages.js';

const MESSAGES = Number(process.argv[2] ?? 2000);
const BATCH_SIZES = [1, 10, 50];

function mail(i: number, run: number): RawMail {
  const raw = [
    `From: Customer ${i} <c${i}.r${run}@customer.example>`,
    'To: support@example.com',
    `Subject: Problem number ${i}`,
    `Message-ID: <bench-${run}-${i}@customer.example>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Hello,\n\nsomething is broken (${i}). ${'Some detail. '.repeat(40)}\n\nRegards`,
    '',
  ].join('\r\n');
  return { origin: { via: 'pipe', mailbox: 'support' }, raw: Buffer.from(raw) };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(batchSize: number, runNo: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-intake-bench-'));
  try {
    const configPath = join(dir, 'config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        publicUrl: 'https://help.example.com',
        smtp: { transport: 'file', fileDir: './outbox', from: 'Support <support@example.com>' },
        // Rate limits would stop acknowledgements, and the point is to measure them.
        limits: { acksPerSenderPerHour: 1_000_000, ticketsPerSenderPerHour: 1_000_000 },
        mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
      }),
    );
    const runtime = await Runtime.open(loadConfig(configPath), silentLogger(), systemClock);
    const mails = Array.from({ length: MESSAGES }, (_, i) => mail(i, runNo));
    const batchMs: number[] = [];
    const started = performance.now();
    for (let i = 0; i < mails.length; i += batchSize) {
      const t = performance.now();
      await takeMessages(runtime.pipeline, mails.slice(i, i + batchSize));
      batchMs.push(performance.now() - t);
    }
    const seconds = (performance.now() - started) / 1000;
    const tickets = (await runtime.store.listTickets()).length;
    const acks = (await runtime.store.outboxCounts()).pending;
    await runtime.close();
    batchMs.sort((a, b) => a - b);
    return {
      'batch size': String(batchSize),
      messages: String(MESSAGES),
      'msgs/s': (MESSAGES / seconds).toFixed(0),
      'batch p50 (ms)': percentile(batchMs, 50).toFixed(1),
      'batch p95 (ms)': percentile(batchMs, 95).toFixed(1),
      tickets: String(tickets),
      'acks queued': String(acks),
      'rss (MB)': (process.memoryUsage().rss / 2 ** 20).toFixed(0),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: Awaited<ReturnType<typeof run>>[] = [];
for (const [n, size] of BATCH_SIZES.entries()) rows.push(await run(size, n));
const columns = Object.keys(rows[0]!) as (keyof (typeof rows)[number])[];
const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
process.stdout.write(`${line(columns)}\n|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|\n`);
for (const r of rows) process.stdout.write(`${line(columns.map((c) => r[c]))}\n`);
const single = Number(rows[0]!['msgs/s']);
const grouped = Number(rows.at(-1)!['msgs/s']);
process.stdout.write(
  `\ngroup commit of ${BATCH_SIZES.at(-1)} vs one message per transaction: ${(grouped / single).toFixed(1)}x the throughput\n`,
);

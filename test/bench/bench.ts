// `npm run bench`: the figures of issue 8 in one run, against a private
// Dovecot and a capturing SMTP server on loopback, with the real daemon as a
// child process. Prints one table and writes the same figures to
// test-output/bench.json. Needs root (Dovecot drops privileges itself).
//
//   node dist/test/bench/bench.js [--quick] [--only backlog,idle,idle-cyrus,lmtp,busy,outbound,ingest,postgres]
//     [--backlog N] [--latency N] [--busy-backlog N] [--outbound N] [--ingest N]
//     [--ack-window-s S] [--cpu-prof] [--seed N]
//
// Sizes also come from BENCH_BACKLOG, BENCH_LATENCY, BENCH_BUSY_BACKLOG,
// BENCH_OUTBOUND and BENCH_INGEST. Every wait is bounded: a figure that
// did not complete in time is reported as such (">60 s"), not waited for.
// The postgres part runs last, after this table: postgres-bench.js, with its
// own table (one node and three on PostgreSQL; --quick makes it smaller).

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { loadConfig } from '../../src/config/load-config.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { takeMessages } from '../../src/pipeline/take-messages.js';
import { cyrusAvailable, startCyrus } from '../harness/cyrus.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { freePort } from '../harness/free-port.js';
import { CLI, startBenchDaemon, type BenchDaemon } from './bench-daemon.js';
import { loadMaildir, makeMailSet, seededRandom, singleMail, type BenchMessage } from './bench-mail.js';
import { startBenchSmtp, type Arrival, type BenchSmtp } from './bench-smtp.js';
import { formatProfileSummary, summarizeProfile } from './profile-summary.js';

const PARTS = ['backlog', 'idle', 'idle-cyrus', 'lmtp', 'busy', 'outbound', 'ingest', 'postgres'] as const;
type Part = (typeof PARTS)[number];

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    backlog: { type: 'string' },
    latency: { type: 'string' },
    'busy-backlog': { type: 'string' },
    outbound: { type: 'string' },
    ingest: { type: 'string' },
    'ack-window-s': { type: 'string' },
    'cpu-prof': { type: 'boolean', default: false },
    seed: { type: 'string' },
  },
});

function size(flag: string | undefined, env: string, full: number, quick: number): number {
  const value = Number(flag ?? process.env[env] ?? (flags.quick ? quick : full));
  if (!Number.isSafeInteger(value) || value < 1)
    throw new Error(`${env}: expected a positive integer, got ${flag ?? process.env[env]}`);
  return value;
}

const SIZES = {
  backlog: size(flags.backlog, 'BENCH_BACKLOG', 10_000, 500),
  latency: size(flags.latency, 'BENCH_LATENCY', 200, 30),
  busyBacklog: size(flags['busy-backlog'], 'BENCH_BUSY_BACKLOG', 3_000, 300),
  outbound: size(flags.outbound, 'BENCH_OUTBOUND', 5_000, 300),
  ingest: size(flags.ingest, 'BENCH_INGEST', 50, 10),
};
/** How long to keep counting acknowledgements once their messages are all taken. */
const ACK_WINDOW_MS = size(flags['ack-window-s'], 'BENCH_ACK_WINDOW_S', 60, 20) * 1000;
const SEED = Number(flags.seed ?? 8);
const INGEST_BUDGET_MS = 180_000;
const ONLY = new Set<Part>(flags.only ? (flags.only.split(',').map((p) => p.trim()) as Part[]) : PARTS);
for (const p of ONLY) if (!PARTS.includes(p)) throw new Error(`--only: unknown part ${p} (parts: ${PARTS.join(', ')})`);

const OUTPUT_DIR = resolve(import.meta.dirname, '../../../test-output');
const PROFILE_DIR = join(OUTPUT_DIR, 'profile');
/** Each part's daemon log, the last run's. */
const LOG_DIR = join(OUTPUT_DIR, 'logs');
const PASS = 'secret';
const USERS = ['backlog', 'baseline', 'idle', 'busy'].map((u) => ({ user: `${u}@example.com`, pass: PASS }));

// ---- figures ---------------------------------------------------------------

interface Row {
  part: string;
  figure: string;
  value: number | null;
  unit: string;
  /** Shown as measured when the value is a lower or upper bound (a wait ran out). */
  shown?: string;
  target?: { text: string; met: boolean };
}

const rows: Row[] = [];
const details: Record<string, unknown> = {};

function row(
  part: string,
  figure: string,
  value: number | null,
  unit: string,
  target?: { text: string; ok: (v: number) => boolean },
  shown?: string,
) {
  rows.push({
    part,
    figure,
    value,
    unit,
    ...(shown !== undefined ? { shown } : {}),
    ...(target ? { target: { text: target.text, met: value !== null && Number.isFinite(value) && target.ok(value) } } : {}),
  });
}

const atLeast = (n: number, unit = '') => ({ text: `>= ${n}${unit}`, ok: (v: number) => v >= n });
const below = (n: number, unit = '') => ({ text: `< ${n}${unit}`, ok: (v: number) => v < n });

/** Nearest-rank percentile; Infinity stands for an acknowledgement that never came. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 0) => Math.round(x * 10 ** digits) / 10 ** digits;

function progress(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

// ---- environment -------------------------------------------------------------

const cleanups: (() => Promise<void>)[] = [];
let dovecot: DovecotServer;

/** Where a mailbox lives: Dovecot, except for the part that measures Cyrus. */
interface ImapServer {
  host: string;
  port: number;
}

async function imapClient(user: string, server: ImapServer = dovecot): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    auth: { user, pass: PASS },
    logger: false,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

async function inboxCount(client: ImapFlow): Promise<number> {
  const status = await client.status('INBOX', { messages: true });
  if (status === false || status.messages === undefined) throw new Error('STATUS INBOX returned no message count');
  return status.messages;
}

interface Installation {
  dir: string;
  configPath: string;
}

/**
 * A config as a new user would write it: defaults everywhere but the servers' addresses,
 * and the LMTP listener on `inboundPort` when one is given.
 */
async function installation(
  name: string,
  smtp: BenchSmtp,
  imapUser: string | null,
  inboundPort?: number,
  imapServer: ImapServer = dovecot,
): Promise<Installation> {
  const dir = mkdtempSync(join(os.tmpdir(), `ticketd-bench-${name}-`));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        database: join(dir, 'data', 'ticketd.sqlite'),
        publicUrl: 'https://help.example.com',
        http: { host: '127.0.0.1', port: await freePort() },
        smtp: { host: '127.0.0.1', port: smtp.port, secure: false, from: 'ACME Support <support@example.com>' },
        ...(inboundPort !== undefined ? { inbound: { host: '127.0.0.1', port: inboundPort, protocol: 'lmtp' } } : {}),
        mailboxes: [
          {
            name: 'support',
            address: 'support@example.com',
            referencePrefix: 'ACME',
            ...(imapUser
              ? { imap: { host: imapServer.host, port: imapServer.port, secure: false, auth: { user: imapUser, pass: PASS } } }
              : {}),
          },
        ],
      },
      null,
      2,
    ),
  );
  return { dir, configPath };
}

async function withSmtp<T>(fn: (smtp: BenchSmtp) => Promise<T>): Promise<T> {
  const smtp = await startBenchSmtp();
  try {
    return await fn(smtp);
  } finally {
    await smtp.stop();
  }
}

async function withDaemon<T>(inst: Installation, name: string, fn: (d: BenchDaemon) => Promise<T>): Promise<T> {
  const eventLoopFile = join(inst.dir, 'event-loop.json');
  const profile = flags['cpu-prof'] ? join(PROFILE_DIR, name) : undefined;
  if (profile) {
    // an earlier run's profiles would be summarised in place of this one's
    rmSync(profile, { recursive: true, force: true });
    mkdirSync(profile, { recursive: true });
  }
  mkdirSync(LOG_DIR, { recursive: true });
  const daemon = await startBenchDaemon({
    configPath: inst.configPath,
    eventLoopFile,
    logFile: join(LOG_DIR, `${name}.log`),
    ...(profile ? { cpuProfileDir: profile } : {}),
  });
  const stop = () => daemon.stop();
  cleanups.push(stop);
  try {
    return await fn(daemon);
  } finally {
    await daemon.stop();
    cleanups.splice(cleanups.indexOf(stop), 1);
    try {
      const delay = JSON.parse(readFileSync(eventLoopFile, 'utf8')) as { p99: number; max: number };
      details[`${name}.eventLoopDelayMs`] = delay;
      row(name, 'event-loop delay p99 / max', delay.p99, 'ms', undefined, `${delay.p99} / ${delay.max}`);
    } catch {
      // killed before it could write: nothing to report
    }
    if (profile) {
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread, the rest parse threads
      const file = readdirSync(profile).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
      if (file)
        details[`${name}.profile`] = {
          file: join(profile, file),
          text: formatProfileSummary(summarizeProfile(join(profile, file), 25)),
        };
    }
  }
}

/** Samples VmRSS while `fn` runs; `mark` records a named sample. */
async function withMemory<T>(
  daemon: BenchDaemon,
  fn: (mark: (name: string) => void) => Promise<T>,
): Promise<{ result: T; peakMb: number; marks: Record<string, number>; maxRssMb: number }> {
  const marks: Record<string, number> = { start: daemon.memory().rssMb };
  let maxRssMb = marks.start!;
  let peakMb = 0;
  const timer = setInterval(() => {
    const m = daemon.memory();
    maxRssMb = Math.max(maxRssMb, m.rssMb);
    peakMb = Math.max(peakMb, m.hwmMb);
  }, 250);
  try {
    const result = await fn((name) => (marks[name] = daemon.memory().rssMb));
    peakMb = Math.max(peakMb, daemon.memory().hwmMb);
    return { result, peakMb, marks, maxRssMb };
  } finally {
    clearInterval(timer);
  }
}

function memoryRow(part: string, peakMb: number) {
  row(part, 'daemon peak RSS (VmHWM)', peakMb, 'MB', below(200, ' MB'));
}

/** Puts `messages` into `user`'s INBOX and makes Dovecot index them; returns how long that took. */
async function prepareMailbox(user: string, messages: readonly BenchMessage[]): Promise<number> {
  const t = performance.now();
  loadMaildir(dovecot, user, messages);
  const client = await imapClient(user);
  try {
    const n = await inboxCount(client);
    if (n !== messages.length) throw new Error(`${user}: INBOX holds ${n} messages after loading ${messages.length}`);
  } finally {
    await client.logout().catch(() => client.close());
  }
  return performance.now() - t;
}

// ---- parts -----------------------------------------------------------------

/** The bare floor: one session fetching the mailbox's sources, mailparser parsing each. */
async function baselineFetchParse(user: string, expected: number): Promise<number> {
  const client = await imapClient(user);
  try {
    const started = performance.now();
    const lock = await client.getMailboxLock('INBOX');
    let parsed = 0;
    try {
      for await (const msg of client.fetch('1:*', { uid: true, source: true })) {
        await simpleParser(msg.source!);
        parsed++;
      }
    } finally {
      lock.release();
    }
    if (parsed !== expected) throw new Error(`baseline parsed ${parsed} of ${expected} messages`);
    return parsed / ((performance.now() - started) / 1000);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

async function backlogPart(): Promise<void> {
  const n = SIZES.backlog;
  progress(`backlog: generating ${n} messages`);
  const messages = makeMailSet({ count: n, seed: SEED, tag: 'bl' });
  const expectedAcks = messages.filter((m) => m.inReplyTo === null).length;
  const bytes = messages.reduce((s, m) => s + m.raw.length, 0);
  details['backlog.mailSet'] = {
    messages: n,
    megabytes: round(bytes / 2 ** 20, 1),
    replies: n - expectedAcks,
    withAttachment: messages.filter((m) => m.raw.includes('Content-Disposition: attachment')).length,
  };
  const loadMs = await prepareMailbox('backlog@example.com', messages);
  await prepareMailbox('baseline@example.com', messages);
  progress(`backlog: loaded and indexed ${n} messages (${round(bytes / 2 ** 20)} MB) in ${round(loadMs / 1000, 1)} s per copy`);

  const baseline = await baselineFetchParse('baseline@example.com', n);
  progress(`backlog: baseline fetch+parse ${round(baseline)} msg/s`);

  await withSmtp(async (smtp) => {
    const inst = await installation('backlog', smtp, 'backlog@example.com');
    const watcher = await imapClient('backlog@example.com');
    try {
      await withDaemon(inst, 'backlog', async (daemon) => {
        const deadline = daemon.startedAt + Math.max(300_000, n * 30);
        const { result, peakMb, marks } = await withMemory(daemon, async (mark) => {
          let left = n;
          let middle = false;
          while (left > 0 && performance.now() < deadline) {
            await sleep(250);
            left = await inboxCount(watcher);
            if (!middle && left <= n / 2) {
              middle = true;
              mark('middle');
            }
          }
          const doneAt = performance.now();
          mark('end');
          progress(
            `backlog: ${left === 0 ? 'INBOX empty' : `${left} still in INBOX at the deadline`} after ${round((doneAt - daemon.startedAt) / 1000, 1)} s; waiting for acknowledgements`,
          );
          await smtp.waitFor(
            expectedAcks,
            Math.max(0, Math.min(deadline + ACK_WINDOW_MS, doneAt + ACK_WINDOW_MS) - performance.now()),
          );
          return { left, doneAt };
        });
        const seconds = (result.doneAt - daemon.startedAt) / 1000;
        const rate = (n - result.left) / seconds;
        const acks = smtp.arrivals.length;
        const lastAck = smtp.arrivals.at(-1)?.at ?? daemon.startedAt;
        const ackRate = acks === 0 ? 0 : acks / ((lastAck - daemon.startedAt) / 1000);
        details['backlog.ticketd'] = {
          taken: daemon.taken(),
          leftInInbox: result.left,
          seconds: round(seconds, 1),
          acks,
          expectedAcks,
        };
        row(
          'backlog',
          `ticketd, ${n} messages taken and moved`,
          round(rate),
          'msg/s',
          undefined,
          result.left > 0 ? `${round(rate)} (${result.left} left at deadline)` : undefined,
        );
        row('backlog', 'bare imapflow fetch + mailparser', round(baseline), 'msg/s');
        row('backlog', 'ratio ticketd / bare', round(rate / baseline, 2), '', atLeast(0.8));
        row(
          'backlog',
          `ack drain (${acks} of ${expectedAcks} acks)`,
          round(ackRate, 1),
          'acks/s',
          undefined,
          acks < expectedAcks ? `${round(ackRate, 1)} (window closed)` : undefined,
        );
        memoryRow('backlog', peakMb);
        const { start = 0, middle = 0, end = 0 } = marks;
        row(
          'backlog',
          'RSS start / middle / end',
          end,
          'MB',
          { text: 'flat: end <= 1.2 x middle', ok: () => middle > 0 && end <= middle * 1.2 },
          `${start} / ${middle} / ${end}`,
        );
        details['backlog.rssMb'] = marks;
      });
    } finally {
      await watcher.logout().catch(() => watcher.close());
    }
  });
}

interface Timed {
  /** Sorted; Infinity for each message never acknowledged within the wait. */
  latencies: number[];
  missing: number;
  /** Message-ID to the moment its message counted as arrived. */
  arrivedAt: Map<string, number>;
  /** The acknowledgements of the measured messages. */
  acks: Arrival[];
}

/**
 * Sends `count` single customer mails one at a time with random pauses
 * through `deliver`, which resolves to the moment its message counts as
 * arrived, then waits up to `waitMs` after the last for their
 * acknowledgements (matched by In-Reply-To). The parts differ only in how a
 * message arrives; the messages and the pauses between them are the same.
 */
async function timeArrivals(
  smtp: BenchSmtp,
  tag: string,
  count: number,
  pauseMs: [number, number],
  waitMs: number,
  deliver: (m: { messageId: string; sender: string; raw: Buffer }) => Promise<number>,
): Promise<Timed> {
  const rnd = seededRandom(SEED + count);
  const arrivedAt = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    await sleep(pauseMs[0] + rnd() * (pauseMs[1] - pauseMs[0]));
    // One customer per message, writing from the address its Message-ID repeats.
    const messageId = `${tag}-${i}@customer.example`;
    const sender = messageId;
    arrivedAt.set(
      messageId,
      await deliver({ messageId, sender, raw: singleMail(messageId, `Customer ${i} <${sender}>`, `Question ${i}`) }),
    );
  }
  const deadline = performance.now() + waitMs;
  const received = () => smtp.arrivals.filter((a) => a.inReplyTo !== null && arrivedAt.has(a.inReplyTo));
  while (received().length < count && performance.now() < deadline) await sleep(100);
  const acks = received();
  const latencies = acks.map((a) => a.at - arrivedAt.get(a.inReplyTo!)!);
  const missing = count - latencies.length;
  for (let i = 0; i < missing; i++) latencies.push(Number.POSITIVE_INFINITY);
  latencies.sort((a, b) => a - b);
  return { latencies, missing, arrivedAt, acks };
}

/**
 * Appends the messages to `user`'s INBOX, each timed from the end of its
 * APPEND. With `watch`, also splits each time at the server's IDLE notice.
 */
async function appendArrivals(
  smtp: BenchSmtp,
  user: string,
  tag: string,
  count: number,
  pauseMs: [number, number],
  waitMs: number,
  watch = false,
  server: ImapServer = dovecot,
): Promise<Timed & { notified: number[]; afterNotice: number[] }> {
  const client = await imapClient(user, server);
  // A second client IDLEs on the same mailbox, as ticketd does, and records
  // when the server tells it about new mail: the floor no client can beat.
  const notices: number[] = [];
  const watcher = watch ? await imapClient(user, server) : null;
  if (watcher) {
    await watcher.mailboxOpen('INBOX');
    watcher.on('exists', () => notices.push(performance.now()));
    void watcher.idle().catch(() => undefined);
  }
  let timed: Timed;
  try {
    timed = await timeArrivals(smtp, tag, count, pauseMs, waitMs, async (m) => {
      await client.append('INBOX', m.raw);
      return performance.now();
    });
  } finally {
    await client.logout().catch(() => client.close());
    if (watcher) await watcher.logout().catch(() => watcher.close());
  }
  // The first notice after an APPEND completed covers that message: the server had it by then.
  const notified: number[] = [];
  const afterNotice: number[] = [];
  for (const a of timed.acks) {
    const at = timed.arrivedAt.get(a.inReplyTo!)!;
    const notice = notices.find((n) => n >= at);
    if (notice === undefined) continue;
    notified.push(notice - at);
    afterNotice.push(a.at - notice);
  }
  notified.sort((a, b) => a - b);
  afterNotice.sort((a, b) => a - b);
  return { ...timed, notified, afterNotice };
}

function latencyRows(
  part: string,
  r: { latencies: number[]; missing: number },
  waitMs: number,
  targets: { p50?: number; p99: number; p50Note?: string },
  /** Names a variant of the part's measurement, before each figure. */
  variant = '',
) {
  const show = (v: number) => (Number.isFinite(v) ? undefined : `> ${round(waitMs / 1000)} s`);
  const p = (q: number) => percentile(r.latencies, q);
  const p50Target = targets.p50 ? below(targets.p50, ' ms') : undefined;
  row(
    part,
    `${variant}arrival to ack p50`,
    round(p(50)),
    'ms',
    p50Target && targets.p50Note ? { ...p50Target, text: `${p50Target.text} ${targets.p50Note}` } : p50Target,
    show(p(50)),
  );
  row(part, `${variant}arrival to ack p95`, round(p(95)), 'ms', undefined, show(p(95)));
  row(
    part,
    `${variant}arrival to ack p99${r.missing > 0 ? ` (${r.missing} never acked)` : ''}`,
    round(p(99)),
    'ms',
    below(targets.p99, ' ms'),
    show(p(99)),
  );
}

/** One share of the arrival-to-ack time as a p50 / p99 row; p95 too in the JSON. */
function shareRow(part: string, figure: string, key: string, sorted: readonly number[]) {
  if (sorted.length === 0) return;
  const p = (q: number) => round(percentile([...sorted], q));
  row(part, `${figure} p50 / p99`, p(50), 'ms', undefined, `${p(50)} / ${p(99)} ms`);
  details[`${part}.${key}`] = { p50: p(50), p95: p(95), p99: p(99) };
}

/**
 * Messages APPENDed one at a time to an empty mailbox the daemon IDLEs on,
 * on `server`: arrival to acknowledgement, and the server's own IDLE notice
 * as a second client hears it. `part` names the rows, `p50Note` what the
 * server adds to the p50.
 */
async function idleArrivals(part: string, server: ImapServer, user: string, p50Note?: string): Promise<void> {
  const count = SIZES.latency;
  const waitMs = 30_000;
  await withSmtp(async (smtp) => {
    const inst = await installation(part, smtp, user, undefined, server);
    await withDaemon(inst, part, async (daemon) => {
      // the worker logs in, finds the mailbox empty and enters IDLE
      await sleep(2_000);
      progress(`${part}: appending ${count} messages one at a time`);
      const { result, peakMb } = await withMemory(daemon, () =>
        appendArrivals(smtp, user, part, count, [50, 350], waitMs, true, server),
      );
      latencyRows(part, result, waitMs, { p50: 100, p99: 500, ...(p50Note ? { p50Note } : {}) });
      shareRow(part, "server's IDLE notice after APPEND", 'serverNoticeMs', result.notified);
      shareRow(part, 'ticketd after the notice', 'afterNoticeMs', result.afterNotice);
      memoryRow(part, peakMb);
    });
  });
}

async function idlePart(): Promise<void> {
  // Dovecot 2.3 holds a mailbox change for NOTIFY_DELAY_MSECS (500, src/lib-storage/mailbox-watch.c)
  // before it tells an IDLE client: no client meets the p50 target over it.
  await idleArrivals('idle', dovecot, 'idle@example.com', '(Dovecot holds IDLE notices up to 500 ms)');
}

/**
 * The idle part against Cyrus IMAP: its idled pushes a mailbox change to the
 * IDLE sessions at once, where Dovecot holds it up to 500 ms, so this is
 * ticketd's own arrival-to-acknowledgement time behind an IDLE notice.
 */
async function idleCyrusPart(): Promise<void> {
  if (!cyrusAvailable()) {
    progress('idle-cyrus: Cyrus is not unpacked (test/setup-machine.sh); skipped');
    return;
  }
  const user = 'idle@example.com';
  const cyrus = await startCyrus({ users: [{ user, pass: PASS }] });
  // stopped here, or by the cleanups when the run is interrupted
  const stop = () => cyrus.stop();
  cleanups.push(stop);
  try {
    await idleArrivals('idle-cyrus', cyrus, user);
  } finally {
    cleanups.splice(cleanups.indexOf(stop), 1);
    await stop();
  }
}

/**
 * The idle part's messages and pauses delivered to the daemon's LMTP listener
 * instead, as an MTA would: no mailbox server between the customer and
 * ticketd. Each is timed from the start of its delivery.
 */
async function lmtpPart(): Promise<void> {
  const count = SIZES.latency;
  const waitMs = 30_000;
  await withSmtp(async (smtp) => {
    const port = await freePort();
    const inst = await installation('lmtp', smtp, null, port);
    // Not pooled: a new connection per message, as Postfix's LMTP client opens
    // when mail for the destination does not pile up in its queue. Each one
    // waits for the listener's greeting, which smtp-server sends 100 ms after
    // the connect (its fixed check for clients that talk too early). The
    // timeouts bound each delivery like every other wait of the benchmark.
    const mtaOptions = {
      host: '127.0.0.1',
      port,
      lmtp: true,
      secure: false,
      ignoreTLS: true,
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
    } as const;
    const mta = nodemailer.createTransport(mtaOptions);
    // The same deliveries over one connection kept open between them, as an
    // MTA's connection cache does (Postfix's lmtp_connection_cache_destinations):
    // only the first waits for the greeting.
    const cachingMta = nodemailer.createTransport({
      ...mtaOptions,
      pool: true,
      maxConnections: 1,
      maxMessages: Number.POSITIVE_INFINITY,
    });
    try {
      await withDaemon(inst, 'lmtp', async (daemon) => {
        // the same settling time the idle part gives its daemon
        await sleep(2_000);
        let deferred = 0;
        const deliverOver = (transport: typeof mta, tag: string, answeredAt: Map<string, number>) =>
          timeArrivals(smtp, tag, count, [50, 350], waitMs, async (m) => {
            const started = performance.now();
            try {
              await transport.sendMail({ envelope: { from: m.sender, to: ['support@example.com'] }, raw: m.raw });
              answeredAt.set(m.messageId, performance.now());
            } catch {
              // An MTA would try again later; here the message counts as never acknowledged.
              deferred++;
            }
            return started;
          });
        progress(`lmtp: delivering ${count} messages one at a time, a connection each`);
        const answeredAt = new Map<string, number>();
        const { result, peakMb } = await withMemory(daemon, () => deliverOver(mta, 'lmtp', answeredAt));
        latencyRows('lmtp', result, waitMs, { p50: 100, p99: 500 });
        // per message, from the start of its delivery to the listener's 250
        const untilAnswered = (answers: Map<string, number>, arrivedAt: Map<string, number>) =>
          [...answers].map(([id, at]) => at - arrivedAt.get(id)!).sort((a, b) => a - b);
        const answered = untilAnswered(answeredAt, result.arrivedAt);
        const afterAnswer = result.acks
          .filter((a) => answeredAt.has(a.inReplyTo!))
          .map((a) => a.at - answeredAt.get(a.inReplyTo!)!)
          .sort((a, b) => a - b);
        shareRow('lmtp', "ticketd's 250 after delivery start", 'answeredMs', answered);
        shareRow('lmtp', 'ack after the 250', 'afterAnswerMs', afterAnswer);
        progress(`lmtp: delivering ${count} more over one connection kept open`);
        const keptAnsweredAt = new Map<string, number>();
        const kept = await deliverOver(cachingMta, 'lmtp-kept', keptAnsweredAt);
        latencyRows('lmtp', kept, waitMs, { p50: 100, p99: 500 }, 'connection kept open: ');
        shareRow(
          'lmtp',
          "connection kept open: ticketd's 250 after delivery start",
          'keptAnsweredMs',
          untilAnswered(keptAnsweredAt, kept.arrivedAt),
        );
        if (deferred > 0) row('lmtp', 'deliveries not answered 250', deferred, '');
        memoryRow('lmtp', peakMb);
      });
    } finally {
      mta.close();
      cachingMta.close();
    }
  });
}

async function busyPart(): Promise<void> {
  const count = SIZES.latency;
  const backlog = SIZES.busyBacklog;
  const waitMs = 60_000;
  const messages = makeMailSet({ count: backlog, seed: SEED + 1, tag: 'busy' });
  await prepareMailbox('busy@example.com', messages);
  await withSmtp(async (smtp) => {
    const inst = await installation('busy', smtp, 'busy@example.com');
    const watcher = await imapClient('busy@example.com');
    try {
      await withDaemon(inst, 'busy', async (daemon) => {
        progress(`busy: ${backlog} messages waiting; appending ${count} more while they are taken`);
        const { result, peakMb } = await withMemory(daemon, async () => {
          // A tag of their own: the backlog's Message-IDs are `busy-N@…`, and a measured message
          // sharing one would be taken as a duplicate of it and never answered.
          const r = await appendArrivals(smtp, 'busy@example.com', 'busy-live', count, [10, 90], waitMs);
          return r;
        });
        // How much of the backlog was still there when the last measured message went in.
        const left = await inboxCount(watcher);
        details['busy.backlogTakenWhileAppending'] = { backlog, taken: daemon.taken(), inboxAtEnd: left };
        latencyRows('busy', result, waitMs, { p99: 2000 });
        memoryRow('busy', peakMb);
      });
    } finally {
      await watcher.logout().catch(() => watcher.close());
    }
  });
}

async function outboundPart(): Promise<void> {
  const n = SIZES.outbound;
  await withSmtp(async (smtp) => {
    const inst = await installation('outbound', smtp, null);
    progress(`outbound: queueing ${n} acknowledgements`);
    const runtime = await Runtime.open(loadConfig(inst.configPath), silentLogger(), systemClock);
    try {
      for (let i = 0; i < n; i += 200) {
        const batch = Array.from({ length: Math.min(200, n - i) }, (_, j) => ({
          origin: { via: 'pipe' as const, mailbox: 'support' },
          raw: singleMail(`out-${i + j}@customer.example`, `Customer ${i + j} <out-${i + j}@customer.example>`, `Order ${i + j}`),
        }));
        await takeMessages(runtime.pipeline, batch);
      }
      const queued = (await runtime.store.outboxCounts()).pending;
      if (queued !== n) throw new Error(`outbound: ${queued} acknowledgements queued, expected ${n}`);
    } finally {
      await runtime.close();
    }
    await withDaemon(inst, 'outbound', async (daemon) => {
      const cpuAtStart = daemon.cpuMs();
      const { peakMb } = await withMemory(daemon, () => smtp.waitFor(n, Math.max(60_000, ACK_WINDOW_MS)));
      const cpu = daemon.cpuMs() - cpuAtStart;
      const got = smtp.arrivals.length;
      const last = smtp.arrivals.at(-1)?.at ?? daemon.startedAt;
      const rate = got === 0 ? 0 : got / ((last - daemon.startedAt) / 1000);
      row(
        'outbound',
        `${n} queued acks drained${got < n ? ` (${got} sent in the window)` : ''}`,
        round(rate, 1),
        'acks/s',
        atLeast(500, '/s'),
      );
      if (got > 0) row('outbound', 'daemon CPU per sent ack', round(cpu / got, 2), 'ms');
      memoryRow('outbound', peakMb);
    });
  });
}

function runIngest(configPath: string, raw: Buffer): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [CLI, 'ingest', '--mailbox', 'support', '--config', configPath], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise(performance.now() - started);
      else reject(new Error(`ticketd ingest exited ${code}: ${stderr}`));
    });
    child.stdin.end(raw);
  });
}

async function ingestPart(): Promise<void> {
  const n = SIZES.ingest;
  await withSmtp(async (smtp) => {
    const inst = await installation('ingest', smtp, null);
    // The first delivery creates and migrates the database, which happens once per installation.
    const firstMs = await runIngest(
      inst.configPath,
      singleMail('ingest-first@customer.example', 'First <first@customer.example>', 'First'),
    );
    const times: number[] = [];
    // On a machine too busy to start a process in a few seconds, fewer runs are enough to show it.
    const deadline = performance.now() + INGEST_BUDGET_MS;
    for (let i = 0; i < n && performance.now() < deadline; i++) {
      times.push(
        await runIngest(
          inst.configPath,
          singleMail(`ingest-${i}@customer.example`, `Customer ${i} <ingest-${i}@customer.example>`, `Piped ${i}`),
        ),
      );
    }
    times.sort((a, b) => a - b);
    details['ingest.ms'] = {
      runs: times.length,
      first: round(firstMs),
      min: round(times[0]!),
      p50: round(percentile(times, 50)),
      p90: round(percentile(times, 90)),
      max: round(times.at(-1)!),
    };
    row(
      'ingest',
      `wall time per message, median of ${times.length}${times.length < n ? ` (of ${n}: time budget)` : ''}`,
      round(percentile(times, 50)),
      'ms',
      below(300, ' ms'),
    );
    row('ingest', 'wall time per message, p90', round(percentile(times, 90)), 'ms');
  });
}

// ---- run -------------------------------------------------------------------

function table(): string {
  const head = ['part', 'figure', 'measured', 'target', 'met'];
  const body = rows.map((r) => [
    r.part,
    r.figure,
    `${r.shown ?? (r.value === null ? '-' : String(r.value))}${r.unit && r.shown === undefined ? ` ${r.unit}` : ''}`,
    r.target?.text ?? '',
    r.target ? (r.target.met ? 'yes' : 'NO') : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w, i) => (i === 2 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
    ...body.map(line),
  ].join('\n');
}

const machine = {
  cores: os.cpus().length,
  loadAverageAtStart: os.loadavg().map((l) => round(l, 2)),
  node: process.version,
  startedAt: new Date().toISOString(),
  sizes: SIZES,
  quick: flags.quick,
};

let failed: unknown = null;
const interrupted = new Promise<void>((resolveInterrupt) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}: stopping the servers`);
      failed = new Error(`interrupted by ${signal}`);
      resolveInterrupt();
    });
  }
});

const runAll = async () => {
  dovecot = await startDovecot({ users: USERS });
  cleanups.push(() => dovecot.stop());
  const started = performance.now();
  if (ONLY.has('backlog')) await backlogPart();
  if (ONLY.has('idle')) await idlePart();
  if (ONLY.has('idle-cyrus')) await idleCyrusPart();
  if (ONLY.has('lmtp')) await lmtpPart();
  if (ONLY.has('busy')) await busyPart();
  if (ONLY.has('outbound')) await outboundPart();
  if (ONLY.has('ingest')) await ingestPart();
  details.totalSeconds = round((performance.now() - started) / 1000);
};

// The table of the parts over Dovecot; --only postgres runs none of them.
if ([...ONLY].some((p) => p !== 'postgres')) {
  try {
    await Promise.race([runAll(), interrupted]);
  } catch (err) {
    failed = err;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }

  const output = `ticketd benchmark: ${machine.cores} cores, load average ${machine.loadAverageAtStart.join(' ')} at start, node ${machine.node}${flags.quick ? ', --quick sizes' : ''}\n${table()}\n`;
  process.stdout.write(output);
  for (const [key, value] of Object.entries(details)) {
    if (key.endsWith('.profile'))
      process.stdout.write(`\n${key} (${(value as { file: string }).file}):\n${(value as { text: string }).text}\n`);
  }
  mkdirSync(OUTPUT_DIR, { recursive: true });
  writeFileSync(
    join(OUTPUT_DIR, 'bench.json'),
    `${JSON.stringify({ machine, rows, details, error: failed ? String((failed as Error).stack ?? failed) : null }, null, 2)}\n`,
  );
  process.stdout.write(`figures written to ${join(OUTPUT_DIR, 'bench.json')}\n`);
  if (failed) {
    process.stderr.write(`bench failed: ${(failed as Error).stack ?? String(failed)}\n`);
    process.exit(1);
  }
}
if (ONLY.has('postgres')) process.exit(await postgresPart());
process.exit(0);

/** The PostgreSQL figures, from their own script and with their own table; its exit code. */
function postgresPart(): Promise<number> {
  process.stdout.write('\n');
  const sizes = flags.quick ? ['--messages', '300', '--tickets', '100000'] : [];
  const child = spawn(process.execPath, [join(import.meta.dirname, 'postgres-bench.js'), ...sizes], { stdio: 'inherit' });
  return new Promise((done) => child.once('exit', (code) => done(code ?? 1)));
}

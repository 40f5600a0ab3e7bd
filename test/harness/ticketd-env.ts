// A ticketd installation for integration tests: real Dovecot, a capturing
// SMTP server, a config file in a temp dir, and the real runtime, workers and
// CLI on top. Nothing in the mail path is mocked.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../src/config/load-config.js';
import { fixedClock, type Clock } from '../../src/core/clock.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { OutboxWorker } from '../../src/outbox/outbox-worker.js';
import { RetrySchedule } from '../../src/outbox/retry-schedule.js';
import { ImapWorker } from '../../src/sources/imap/imap-worker.js';
import { startDovecot, type DovecotOptions, type DovecotServer } from './dovecot.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import { startSmtpCapture, type CapturedMessage, type SmtpCapture } from './smtp-capture.js';

export const CLI = resolve(import.meta.dirname, '../../dist/src/cli/main.js');

/**
 * Which engine an installation stores into: SQLite unless asked, or
 * TICKETD_TEST_DATABASE=postgres to run a suite against a private PostgreSQL
 * (test/harness/postgres.ts) unchanged.
 */
export type TestDatabase = 'sqlite' | 'postgres';

export function testDatabase(): TestDatabase {
  const wanted = process.env.TICKETD_TEST_DATABASE ?? 'sqlite';
  if (wanted !== 'sqlite' && wanted !== 'postgres')
    throw new Error(`TICKETD_TEST_DATABASE must be sqlite or postgres, not ${wanted}`);
  return wanted;
}

export interface TicketdEnv {
  dir: string;
  /** The `database` setting of the config: a file path, or a postgres:// URL. */
  database: string;
  dovecot: DovecotServer;
  smtp: SmtpCapture;
  configPath: string;
  /** Rewrites the config file with changes on top of the base config. */
  writeConfig(patch?: (cfg: Record<string, any>) => void): void;
  /** An in-process installation with workers that only run when asked (`cycle`). */
  open(opts?: { clock?: Clock; logger?: Logger }): Promise<InProcess>;
  /** Runs `ticketd ARGS --config <this config>` to completion. */
  cli(
    args: string[],
    opts?: { input?: string | Buffer; config?: string },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** `ticketd tickets show REF --json`, parsed; a failing command throws with its exit code and stderr. */
  showTicket(ref: string): Promise<any>;
  /** `ticketd tickets list --json`, parsed; a failing command throws with its exit code and stderr. */
  listTickets(): Promise<any[]>;
  /** Starts `ticketd start` as a child process; logs are collected. */
  spawnDaemon(): DaemonProcess;
  stop(): Promise<void>;
}

export interface InProcess {
  runtime: Runtime;
  imap: ImapWorker;
  outbox: OutboxWorker;
  clock: Clock & { advance(ms: number): void; set(at: Date | string): void };
  /** Take what the mailbox holds, then send what is due. */
  cycle(): Promise<void>;
  close(): Promise<void>;
}

export interface DaemonProcess {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first log line (parsed) for which `pred` holds. */
  waitForLog(pred: (entry: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export const SUPPORT = 'support@example.com';

export async function startTicketdEnv(opts: { dovecot?: DovecotOptions; database?: TestDatabase } = {}): Promise<TicketdEnv> {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-it-'));
  const dovecot = await startDovecot(opts.dovecot);
  const smtp = await startSmtpCapture();
  const postgres: PostgresServer | null = (opts.database ?? testDatabase()) === 'postgres' ? await startPostgres() : null;
  const database = postgres === null ? './data/ticketd.sqlite' : await postgres.createDatabase();
  const configPath = join(dir, 'config.json');
  const base = (): Record<string, any> => ({
    database,
    ...(postgres !== null && { dataDir: './data' }),
    publicUrl: 'http://127.0.0.1:8080',
    http: { enabled: false },
    smtp: { host: '127.0.0.1', port: smtp.port, secure: false, from: 'ACME Support <support@example.com>', sendTimeoutMs: 5000 },
    outbox: { retrySchedule: ['1m', '5m', '1h'], pollIntervalMs: 200 },
    mailboxes: [
      {
        name: 'support',
        address: SUPPORT,
        referencePrefix: 'ACME',
        imap: {
          host: dovecot.host,
          port: dovecot.port,
          secure: false,
          auth: { user: SUPPORT, pass: 'secret' },
          pollIntervalMs: 500,
          batchSize: 10,
          operationTimeoutMs: 10_000,
        },
      },
    ],
  });
  const writeConfig = (patch?: (cfg: Record<string, any>) => void) => {
    const cfg = base();
    patch?.(cfg);
    writeFileSync(configPath, JSON.stringify(cfg, null, 2));
  };
  writeConfig();

  // Throws rather than asserting, so that the harness does not lean on the
  // calling test's `expect`; the message carries what the assertion showed.
  const cliJson = async (args: string[]): Promise<any> => {
    const r = await env.cli(args);
    if (r.code !== 0) throw new Error(`ticketd ${args.join(' ')} exited with ${r.code}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };

  const env: TicketdEnv = {
    dir,
    database: postgres === null ? join(dir, 'data', 'ticketd.sqlite') : database,
    dovecot,
    smtp,
    configPath,
    writeConfig,
    async open(opts = {}) {
      const clock = fixedClock(new Date());
      const logger = opts.logger ?? silentLogger();
      const runtime = await Runtime.open(loadConfig(configPath), logger, opts.clock ?? clock);
      const mailbox = runtime.config.mailboxes[0]!;
      const imap = new ImapWorker({ mailbox, pipeline: runtime.pipeline, logger, clock: opts.clock ?? clock });
      const outbox = new OutboxWorker({
        store: runtime.store,
        mailerFor: (m) => runtime.mailerFor(m),
        schedule: new RetrySchedule(runtime.config.outbox.retrySchedule),
        logger,
        clock: opts.clock ?? clock,
        pollIntervalMs: 200,
        batchSize: 50,
        concurrency: () => runtime.outboxConcurrency(),
        maxInDoubt: () => runtime.config.outbox.maxInDoubt,
        leaseMs: 30_000,
      });
      return {
        runtime,
        imap,
        outbox,
        clock,
        async cycle() {
          await imap.runOnce();
          await outbox.runOnce();
        },
        async close() {
          await imap.stop();
          await runtime.close();
        },
      };
    },
    cli(args, opts = {}) {
      return new Promise((done) => {
        const child = spawn(process.execPath, [CLI, ...args, '--config', opts.config ?? configPath], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
        child.stdin.end(opts.input ?? '');
      });
    },
    showTicket(ref) {
      return cliJson(['tickets', 'show', ref, '--json']);
    },
    listTickets() {
      return cliJson(['tickets', 'list', '--json']);
    },
    spawnDaemon() {
      const child = spawn(process.execPath, [CLI, 'start', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: string[] = [];
      const waiters: { pred: (e: Record<string, any>) => boolean; resolve: (e: Record<string, any>) => void }[] = [];
      let buf = '';
      const onLine = (line: string) => {
        lines.push(line);
        let entry: Record<string, any>;
        try {
          entry = JSON.parse(line);
        } catch {
          return;
        }
        for (const w of [...waiters]) {
          if (w.pred(entry)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(entry);
          }
        }
      };
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      child.stderr!.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
      let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
        child.on('exit', (code, signal) => {
          exit = { code, signal };
          r(exit);
        }),
      );
      return {
        child,
        lines,
        exited,
        waitForLog(pred, timeoutMs = 20_000) {
          const seen = lines.map((l) => {
            try {
              return JSON.parse(l);
            } catch {
              return null;
            }
          });
          const hit = seen.find((e) => e && pred(e));
          if (hit) return Promise.resolve(hit);
          return new Promise((res, rej) => {
            const t = setTimeout(() => {
              const state = exit === null ? 'still running' : `exited with code ${exit.code}, signal ${exit.signal}`;
              rej(new Error(`no matching log line within ${timeoutMs} ms (the process is ${state}); got:\n${lines.join('\n')}`));
            }, timeoutMs);
            waiters.push({
              pred,
              resolve: (e) => {
                clearTimeout(t);
                res(e);
              },
            });
          });
        },
      };
    },
    async stop() {
      await Promise.allSettled([dovecot.stop(), smtp.stop(), postgres?.stop()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** A plain customer mail as an MUA would send it. */
export function customerMail(o: {
  from?: string;
  to?: string;
  subject: string;
  body?: string;
  messageId: string;
  inReplyTo?: string;
  references?: string[];
  headers?: Record<string, string>;
  cc?: string;
}): string {
  const lines = [
    `From: ${o.from ?? 'Jane Customer <jane@customer.example>'}`,
    `To: ${o.to ?? SUPPORT}`,
    ...(o.cc ? [`Cc: ${o.cc}`] : []),
    `Subject: ${o.subject}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${o.messageId}>`,
    ...(o.inReplyTo ? [`In-Reply-To: <${o.inReplyTo}>`] : []),
    ...(o.references?.length ? [`References: ${o.references.map((r) => `<${r}>`).join(' ')}`] : []),
    ...Object.entries(o.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    o.body ?? 'Hello, my printer is on fire. Please help.',
    '',
  ];
  return lines.join('\r\n');
}

/**
 * A staff member's answer to one of our mails (a notice), as a mail client
 * writes it: Re: subject, In-Reply-To and References to that mail, and the
 * original quoted below an "On … wrote:" line.
 */
export function staffReply(to: CapturedMessage, o: { from: string; messageId: string; body: string }): string {
  // Without it the answer would not thread, and would test something else.
  if (!to.parsed.messageId) throw new Error(`staffReply: the mail "${to.parsed.subject}" has no Message-ID`);
  const id = to.parsed.messageId.replace(/^<|>$/g, '');
  const quoted = (to.parsed.text ?? '')
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\r\n');
  return customerMail({
    from: o.from,
    to: SUPPORT,
    subject: `Re: ${to.parsed.subject}`,
    messageId: o.messageId,
    inReplyTo: id,
    references: [id],
    body: `${o.body}\r\n\r\nOn Wed, 2 Dec 2026 at 09:00, ACME Support <support@example.com> wrote:\r\n${quoted}`,
  });
}

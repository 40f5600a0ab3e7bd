// A real runtime (SQLite file, shipped templates, intake pipeline) on a
// fixed clock, for the SLA tests. Mail enters through the same pipeline the
// IMAP worker uses.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig, type Config } from '../../src/config/load-config.js';
import { fixedClock } from '../../src/core/clock.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import { takeMessages } from '../../src/pipeline/take-messages.js';
import { dbOf } from '../harness/sqlite-store.js';

type Json = Record<string, any>;

export const OFFICE = {
  timezone: 'Europe/Berlin',
  hours: { mon: '09:00-17:00', tue: '09:00-17:00', wed: '09:00-17:00', thu: '09:00-17:00', fri: '09:00-17:00' },
  holidays: ['2026-12-25'],
};

export const STANDARD_POLICY = {
  name: 'standard',
  match: { mailbox: 'support' },
  firstResponse: '4h',
  resolution: '3d',
  calendar: 'office',
  customerNotices: [{ at: '100%', repeatEvery: '24h', max: 3 }],
  staffWarnings: ['80%', '100%'],
  staffAddress: 'team@example.com',
};

export function slaConfigJson(dir: string, patch?: (cfg: Json) => void): Json {
  // A deep copy: tests patch it freely.
  const cfg: Json = structuredClone({
    database: join(dir, 'ticketd.sqlite'),
    publicUrl: 'https://help.example.com',
    smtp: { from: 'ACME Support <support@example.com>', transport: 'file', fileDir: join(dir, 'mail') },
    mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
    calendars: { office: OFFICE },
    sla: { policies: [STANDARD_POLICY] },
  });
  patch?.(cfg);
  return cfg;
}

export interface SlaDesk {
  dir: string;
  config: Config;
  runtime: Runtime;
  clock: ReturnType<typeof fixedClock>;
  /** Takes a customer mail through the intake pipeline at the clock's time; returns the ticket reference. */
  receive(mail: {
    from?: string;
    subject: string;
    messageId: string;
    headers?: Record<string, string>;
    inReplyTo?: string;
  }): Promise<string>;
  /** A second runtime on the same database file, as after a restart. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function openDesk(at: string, opts: { patch?: (cfg: Json) => void; logger?: Logger } = {}): Promise<SlaDesk> {
  const dir = mkdtempSync(join(tmpdir(), 'ticketd-sla-'));
  const config = parseConfig(slaConfigJson(dir, opts.patch), dir);
  const clock = fixedClock(at);
  const logger = opts.logger ?? silentLogger();
  const desk: SlaDesk = {
    dir,
    config,
    runtime: await Runtime.open(config, logger, clock),
    clock,
    async receive(m) {
      const raw = [
        `From: ${m.from ?? 'Jane Customer <jane@customer.example>'}`,
        'To: support@example.com',
        `Subject: ${m.subject}`,
        `Date: ${clock.now().toUTCString()}`,
        `Message-ID: <${m.messageId}>`,
        ...(m.inReplyTo ? [`In-Reply-To: <${m.inReplyTo}>`, `References: <${m.inReplyTo}>`] : []),
        ...Object.entries(m.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Hello, the printer is on fire.',
        '',
      ].join('\r\n');
      const [result] = await takeMessages(desk.runtime.pipeline, [
        { origin: { via: 'pipe', mailbox: 'support' }, raw: Buffer.from(raw) },
      ]);
      if (!result?.ref) throw new Error(`mail was not taken: ${JSON.stringify(result)}`);
      return result.ref;
    },
    async restart() {
      await desk.runtime.close();
      desk.runtime = await Runtime.open(config, logger, clock);
    },
    async close() {
      await desk.runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return desk;
}

/** What the outbox holds for a ticket, oldest first. */
export function outboxOf(
  desk: SlaDesk,
  ref: string,
): { kind: string; to: string; subject: string; text: string; headers: Record<string, unknown>; messageId: string }[] {
  const t = dbOf(desk.runtime).prepare('SELECT id FROM tickets WHERE ref = ?').get(ref) as { id: number };
  const rows = dbOf(desk.runtime)
    .prepare(
      `SELECT m.kind, m.rcpt AS "to", m.subject, m.body_text AS text, m.headers, m.message_id AS messageId
       FROM outbox o JOIN messages m ON m.id = o.message_row WHERE m.ticket_id = ? ORDER BY o.id`,
    )
    .all(t.id) as { kind: string; to: string; subject: string; text: string; headers: string; messageId: string }[];
  return rows.map((r) => ({ ...r, headers: JSON.parse(r.headers) as Record<string, unknown> }));
}

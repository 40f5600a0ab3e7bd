// The ticketd binary as an admin or a script uses it, against real servers.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { systemClock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runtime } from '../../src/daemon/runtime.js';
import type { Readiness } from '../../src/web/readiness.js';
import { buildWebServer } from '../../src/web/server.js';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';
import { dbOf, recordsOf } from '../harness/sqlite-store.js';

let env: TicketdEnv;

beforeAll(async () => {
  env = await startTicketdEnv();
});
afterAll(async () => {
  await env?.stop();
});

describe('ticketd CLI', () => {
  it('refuses a bad config with one line per problem naming the JSON path, and no secret', async () => {
    const bad = join(env.dir, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({
        publicUrl: 'not a url',
        smtp: { port: 'x', from: 'a@b.example', auth: { user: 'u', pass: 'hunter2-SECRET' } },
        mailboxes: [{ name: 'Bad Name', address: 'x@y.example', referencePrefix: 'acme', imapp: {} }],
      }),
    );
    const r = await env.cli(['check-config'], { config: bad });
    expect(r.code).toBe(78);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    for (const path of ['publicUrl', 'smtp.port', 'mailboxes[0].name', 'mailboxes[0].referencePrefix', 'mailboxes[0].imapp']) {
      expect(lines.filter((l) => l.includes(path))).toHaveLength(1);
    }
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('hunter2');
  });

  it('checks a good config and prints it with secrets redacted', async () => {
    const ok = await env.cli(['check-config']);
    expect(ok.code, ok.stderr).toBe(0);
    const json = await env.cli(['check-config', '--json']);
    const cfg = JSON.parse(json.stdout);
    expect(cfg.mailboxes[0].imap.auth.pass).toBe('[redacted]');
    expect(json.stdout).not.toContain('"secret"');
  });

  it('migrates idempotently', async () => {
    const first = await env.cli(['migrate']);
    expect(first.code, first.stderr).toBe(0);
    const again = await env.cli(['migrate']);
    expect(again.stderr).toMatch(/database is at version \d+/);
  });

  it('sends an agent reply through the outbox, threaded into the conversation, counted as a response', async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Cannot log in', messageId: 'cli1@customer.example' }),
    );
    const td = await env.open();
    try {
      await td.cycle();
      const [ack] = await env.smtp.waitFor(1);
      const ref = /\[(ACME-\w{6})\]/.exec(ack!.parsed.subject!)![1]!;
      env.smtp.clear();

      const r = await env.cli(['tickets', 'reply', ref.toLowerCase(), '--message', 'Please try again now.\nSam']);
      expect(r.code, r.stderr).toBe(0);
      // The CLI queued it at the wall-clock time; the in-process clock is frozen.
      td.clock.set(new Date());
      await td.outbox.runOnce();
      const [reply] = await env.smtp.waitFor(1);
      expect(reply!.parsed.subject).toContain(`[${ref}]`);
      expect(reply!.parsed.text).toContain('Please try again now.');
      expect(reply!.parsed.inReplyTo).toBe(ack!.parsed.messageId);
      expect(String(reply!.parsed.references)).toContain('<cli1@customer.example>');
      expect(reply!.parsed.headers.get('auto-submitted')).toBeUndefined();

      const shown = JSON.parse((await env.cli(['tickets', 'show', ref, '--json'])).stdout);
      expect(shown.messages.map((m: { kind: string }) => m.kind)).toEqual(['request', 'ack', 'agent-reply']);
      const row = dbOf(td.runtime).prepare('SELECT first_response_at FROM tickets WHERE ref = ?').get(ref) as {
        first_response_at: number;
      };
      expect(row.first_response_at).toBeGreaterThan(0);

      const status = await env.cli(['tickets', 'status', ref, 'on-hold', '--reason', 'waiting for a spare part']);
      expect(status.code, status.stderr).toBe(0);
      const list = JSON.parse((await env.cli(['tickets', 'list', '--status', 'on-hold', '--json'])).stdout);
      expect(list.map((t: { ref: string }) => t.ref)).toEqual([ref]);
    } finally {
      await td.close();
    }
  });

  it('hands a ticket to a team: the customer sees the team, only staff see the note', async () => {
    const [ticket] = JSON.parse((await env.cli(['tickets', 'list', '--status', 'on-hold', '--json'])).stdout);
    const r = await env.cli([
      'tickets',
      'handoff',
      ticket.ref,
      '--team',
      'Hardware',
      '--note',
      'Serial 4711, lamp already replaced once',
    ]);
    expect(r.code, r.stderr).toBe(0);

    const shown = JSON.parse((await env.cli(['tickets', 'show', ticket.ref, '--json'])).stdout);
    expect(shown.team).toBe('Hardware');
    const human = await env.cli(['tickets', 'show', ticket.ref]);
    expect(human.stdout).toContain('Serial 4711, lamp already replaced once');

    env.writeConfig((c) => (c.http = { enabled: true }));
    const runtime = await Runtime.open(loadConfig(env.configPath), silentLogger(), systemClock);
    const app = buildWebServer({ site: runtime, readiness: async () => ({ ok: true }) as unknown as Readiness });
    try {
      const row = (await runtime.store.ticketByRef(ticket.ref))!;
      const token = await recordsOf(runtime).tokenFor(row.id, row.replyTo, runtime.links, Date.now());
      const page = await app.inject({ method: 'GET', url: `/t/${token}` });
      expect(page.statusCode).toBe(200);
      expect(page.body).toMatch(/Handed to the <span class="user-text">Hardware<\/span> team/);
      expect(page.body).not.toContain('Serial 4711');
    } finally {
      await app.close();
      runtime.close();
      env.writeConfig();
    }
  });

  it('answers an unknown or malformed reference with exit 64 and one line', async () => {
    const unknown = await env.cli(['tickets', 'show', 'ACME-ZZZZZZ']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    const malformed = await env.cli(['tickets', 'status', 'nonsense', 'open']);
    expect(malformed.code).toBe(64);
    const badStatus = await env.cli(['tickets', 'status', 'ACME-ZZZZZZ', 'sleeping']);
    expect(badStatus.code).toBe(64);
  });
});

// Operations commands against a real installation: templates check,
// preview and send-test, doctor against real Dovecot and SMTP, and online
// backups while the daemon writes.

import { cpSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { TEMPLATE_KINDS } from '../../src/compose/template-schema.js';
import { freePort } from '../harness/free-port.js';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

const TIMEOUT = { timeout: 60_000 };
const SHIPPED = join(packageRoot(), 'templates');
let env: TicketdEnv;

/** Every template file under a folder, with or without the status page's web/. */
function templateFiles(dir: string, web: boolean): string[] {
  return (readdirSync(dir, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('.hbs') && (web || !f.startsWith('web/')))
    .map((f) => join(dir, f))
    .sort();
}

function countTickets(file: string): { tickets: number; integrity: string; journal: string } {
  const db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    return {
      tickets: (db.prepare('SELECT count(*) AS n FROM tickets').get() as { n: number }).n,
      integrity: db.pragma('integrity_check', { simple: true }) as string,
      journal: db.pragma('journal_mode', { simple: true }) as string,
    };
  } finally {
    db.close();
  }
}

function section(out: string, name: 'text' | 'html'): string {
  const match =
    name === 'text' ? /----- text -----\n([\s\S]*?)----- html -----\n/.exec(out) : /----- html -----\n([\s\S]*)$/.exec(out);
  if (!match) throw new Error(`no ${name} part in:\n${out}`);
  return match[1]!;
}

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

describe('templates check', () => {
  it('prints one OK line per template file, the status page ones when http is enabled', TIMEOUT, async () => {
    env.writeConfig();
    const r = await env.cli(['templates', 'check']);
    expect(r.code, r.stderr).toBe(0);
    const files = templateFiles(SHIPPED, false);
    expect(files.length).toBeGreaterThanOrEqual(12);
    expect(r.stdout.trimEnd().split('\n').sort()).toEqual(files.map((f) => `OK ${f}`));

    env.writeConfig((c) => (c.http = { enabled: true }));
    const withWeb = await env.cli(['templates', 'check']);
    expect(withWeb.code, withWeb.stderr).toBe(0);
    const all = templateFiles(SHIPPED, true);
    expect(all.length).toBeGreaterThan(files.length);
    expect(withWeb.stdout.trimEnd().split('\n').sort()).toEqual(all.map((f) => `OK ${f}`));
    env.writeConfig();
  });

  it('fails with file:line: message for an unknown variable, in an override too', TIMEOUT, async () => {
    const dir = join(env.dir, 'templates-broken');
    cpSync(SHIPPED, dir, { recursive: true });
    const file = join(dir, 'de', 'ack.text.hbs');
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('{{statusUrl}}'));
    lines[at] = lines[at]!.replace('{{statusUrl}}', '{{reff}}');
    writeFileSync(file, lines.join('\n'));
    env.writeConfig((c) => (c.templatesDir = dir));

    const r = await env.cli(['templates', 'check']);
    expect(r.code).toBe(1);
    const problems = r.stdout.trimEnd().split('\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${at + 1}: unknown variable "reff"`));
    expect(r.stdout).not.toMatch(/^OK /m);
    env.writeConfig();
  });
});

describe('templates preview and send-test', () => {
  it('renders subject, text and html with sample data for a mailbox and language', TIMEOUT, async () => {
    const r = await env.cli(['templates', 'preview', 'ack', '--mailbox', 'support', '--lang', 'de']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(
      'Subject: [ACME-7K3QH9] Wir haben Ihre Anfrage erhalten: Printer on the 3rd floor keeps jamming',
    );
    expect(section(r.stdout, 'text')).toContain('Guten Tag Jane Doe,');
    expect(section(r.stdout, 'text')).toContain('http://127.0.0.1:8080/t/');
    expect(section(r.stdout, 'html')).toMatch(/^<!DOCTYPE html>/);
    expect(section(r.stdout, 'html')).toContain('Guten Tag Jane Doe');

    const en = await env.cli(['templates', 'preview', 'agent-reply']);
    expect(en.code, en.stderr).toBe(0);
    expect(en.stdout).toContain('the technician replaced the feed roller');
  });

  it("uses the mailbox's reference prefix and links under publicUrl", TIMEOUT, async () => {
    env.writeConfig((c) => {
      c.publicUrl = 'https://help.example.org/desk/';
      c.mailboxes[0].referencePrefix = 'HELP';
      c.mailboxes[0].timezone = 'Europe/Berlin';
    });
    try {
      const r = await env.cli(['templates', 'preview', 'delay-notice', '--lang', 'de']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split('\n')[0]).toBe(
        'Subject: [HELP-7K3QH9] Entschuldigung für die Wartezeit: Printer on the 3rd floor keeps jamming',
      );
      for (const part of ['text', 'html'] as const) {
        const links = section(r.stdout, part).match(/https?:\/\/[^\s"<]+/g) ?? [];
        expect(links.length).toBeGreaterThan(0);
        for (const link of links) expect(link).toMatch(/^https:\/\/help\.example\.org\/desk\/t\/[^/]+$/);
      }
      expect(section(r.stdout, 'text')).toContain('[HELP-7K3QH9]');
      expect(section(r.stdout, 'text')).toContain('wartet schon 2 Tage');

      const warning = await env.cli(['templates', 'preview', 'staff-warning']);
      expect(warning.code, warning.stderr).toBe(0);
      expect(warning.stdout).toContain('https://help.example.org/desk/t/');
      expect(warning.stdout).toMatch(/Due: +Mar 3, 2025, 2:41\sPM GMT\+1/);
    } finally {
      env.writeConfig();
    }
  });

  it('refuses an unknown kind or mailbox as a usage error', TIMEOUT, async () => {
    const kind = await env.cli(['templates', 'preview', 'welcome']);
    expect(kind.code).toBe(64);
    expect(kind.stderr).toContain(`unknown template kind "welcome"; use one of ${TEMPLATE_KINDS.join(', ')}\n`);
    expect(TEMPLATE_KINDS).toContain('resolved');
    const mailbox = await env.cli(['templates', 'preview', 'ack', '--mailbox', 'nope']);
    expect(mailbox.code).toBe(64);
    expect(mailbox.stderr).toContain('no mailbox named "nope"; configured: support');
  });

  it("renders a real ticket's data: the same mail the customer got", TIMEOUT, async () => {
    const td = await env.open();
    try {
      await env.dovecot.appendMessage(
        SUPPORT,
        'INBOX',
        customerMail({
          from: 'Max Mustermann <max@kunde.example>',
          subject: 'Projector flickers',
          messageId: 'p1@kunde.example',
        }),
      );
      await td.cycle();
    } finally {
      await td.close();
    }
    const [ack] = await env.smtp.waitFor(1);
    env.smtp.clear();
    const ref = /\[(ACME-[0-9A-Z]{6})\]/.exec(ack!.parsed.subject ?? '')![1]!;

    const r = await env.cli(['templates', 'preview', 'ack', '--ticket', ref]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe(`Subject: ${ack!.parsed.subject}`);
    expect(section(r.stdout, 'text').trimEnd()).toBe(ack!.parsed.text!.trimEnd());
    expect(section(r.stdout, 'text')).toContain('Hello Max Mustermann,');
  });

  it('sends the rendered sample through the configured SMTP server', TIMEOUT, async () => {
    const r = await env.cli(['templates', 'send-test', 'ack', '--to', 'qa@example.net', '--lang', 'de']);
    expect(r.code, r.stderr).toBe(0);
    const [sent] = await env.smtp.waitFor(1);
    env.smtp.clear();
    expect(sent!.envelope).toEqual({ from: SUPPORT, to: ['qa@example.net'] });
    expect(sent!.parsed.subject).toBe('[ACME-7K3QH9] Wir haben Ihre Anfrage erhalten: Printer on the 3rd floor keeps jamming');
    expect(sent!.parsed.from?.value).toEqual([{ name: 'ACME Support', address: SUPPORT }]);
    expect(sent!.parsed.headers.get('x-ticketd-test')).toBe('ack');
    expect(sent!.parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(sent!.parsed.text).toContain('Guten Tag Jane Doe,');
    expect(sent!.parsed.html).toContain('Guten Tag Jane Doe');
  });

  it('reports a send that fails, and a bad address', TIMEOUT, async () => {
    const bad = await env.cli(['templates', 'send-test', 'ack', '--to', 'not-an-address']);
    expect(bad.code).toBe(64);
    await env.smtp.close();
    try {
      const r = await env.cli(['templates', 'send-test', 'ack', '--to', 'qa@example.net']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ECONNREFUSED/);
    } finally {
      await env.smtp.restart();
    }
    expect(env.smtp.messages).toHaveLength(0);
  });
});

describe('doctor', () => {
  let httpPort = 0;
  beforeAll(async () => {
    httpPort = await freePort();
  });
  const withHttp = (patch?: (c: Record<string, any>) => void) =>
    env.writeConfig((c) => {
      c.http = { enabled: true, host: '127.0.0.1', port: httpPort };
      patch?.(c);
    });

  it('prints one OK line per check against working servers', TIMEOUT, async () => {
    withHttp();
    const r = await env.cli(['doctor']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.replace(/:.*/, ''))).toEqual([
      'OK      config',
      'OK      database',
      'OK      templates',
      'OK      imap support',
      `OK      smtp 127.0.0.1`,
      'OK      http',
    ]);
    expect(lines[1]).toMatch(/schema version \d+, writable, 1 ticket\(s\)$/);
    expect(lines[3]).toBe(
      `OK      imap support: ${SUPPORT} at ${env.dovecot.host}:${env.dovecot.port}, folder INBOX: logged in, 0 message(s) in the folder`,
    );
    expect(lines[4]).toContain(`smtp 127.0.0.1:${env.smtp.port}: server ready (used by support)`);
    expect(lines[5]).toBe(`OK      http: 127.0.0.1:${httpPort} can be listened on`);
  });

  it('reports a wrong IMAP password as a FAILED line, exits 1 and shows no secret', TIMEOUT, async () => {
    const wrong = 'Wr0ng-Pa55-7741';
    withHttp((c) => (c.mailboxes[0].imap.auth.pass = wrong));
    const r = await env.cli(['doctor']);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(6);
    expect(lines[3]).toMatch(new RegExp(`^FAILED  imap support: ${SUPPORT} at .*: login refused`));
    expect(lines.filter((l) => l.startsWith('FAILED'))).toHaveLength(1);
    expect(r.stdout + r.stderr).not.toContain(wrong);
    expect(r.stderr).toBe('');
  });

  it('reports an SMTP server that is down, and a port taken by another program', TIMEOUT, async () => {
    withHttp();
    // Another web server on the port: it answers, but not as ticketd.
    const squatter = http.createServer((_req, res) => res.writeHead(404).end('not here'));
    await new Promise<void>((resolve) => squatter.listen(httpPort, '127.0.0.1', resolve));
    await env.smtp.close();
    let r: Awaited<ReturnType<typeof env.cli>>;
    try {
      r = await env.cli(['doctor']);
    } finally {
      await env.smtp.restart();
      squatter.closeAllConnections();
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[4]).toMatch(new RegExp(`^FAILED  smtp 127\\.0\\.0\\.1:${env.smtp.port}: \\w+: .*ECONNREFUSED`));
    expect(lines[5]).toBe(`FAILED  http: 127.0.0.1:${httpPort} is in use by another program`);
    expect(lines.slice(0, 4).every((l) => l.startsWith('OK'))).toBe(true);
  });

  it('reports a broken config as a FAILED line instead of crashing', TIMEOUT, async () => {
    env.writeConfig((c) => (c.mailboxes[0].imap.port = 'imap'));
    const r = await env.cli(['doctor']);
    expect(r.code).toBe(1);
    expect(r.stdout.trimEnd()).toBe(
      'FAILED  config: mailboxes[0].imap.port: expected an integer between 1 and 65535, got "imap"',
    );
    env.writeConfig();
  });
});

describe('backup', () => {
  it('writes a private, verified single-file copy and refuses to overwrite it without --force', TIMEOUT, async () => {
    env.writeConfig();
    const file = join(env.dir, 'backups', 'first.sqlite');
    mkdirSync(join(env.dir, 'backups'));
    const r = await env.cli(['backup', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/1 ticket\(s\), integrity ok/);
    expect(countTickets(file)).toEqual({ tickets: 1, integrity: 'ok', journal: 'delete' });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(env.dir, 'backups'))).toEqual(['first.sqlite']);

    const before = readFileSync(file);
    const again = await env.cli(['backup', file]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TICKETD_BACKUP_TARGET_EXISTS');
    expect(again.stderr).toContain('--force');
    expect(readFileSync(file).equals(before)).toBe(true);

    const forced = await env.cli(['backup', file, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(countTickets(file).tickets).toBe(1);
  });

  it('copies consistently while the daemon is taking mail', { timeout: 120_000 }, async () => {
    env.writeConfig();
    const daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      const mails = 6;
      const delivering = (async () => {
        for (let i = 0; i < mails; i++) {
          await env.dovecot.appendMessage(
            SUPPORT,
            'INBOX',
            customerMail({
              from: `Customer ${i} <c${i}@customer.example>`,
              subject: `Backup race ${i}`,
              messageId: `race${i}@customer.example`,
            }),
          );
        }
      })();
      const copies: string[] = [];
      for (let i = 0; i < 3; i++) {
        const file = join(env.dir, 'backups', `online-${i}.sqlite`);
        const r = await env.cli(['backup', file]);
        expect(r.code, r.stderr).toBe(0);
        copies.push(file);
      }
      await delivering;
      await env.smtp.waitFor(mails, 30_000);
      const counts = copies.map((f) => countTickets(f));
      for (const c of counts) expect(c.integrity).toBe('ok');
      const tickets = counts.map((c) => c.tickets);
      expect([...tickets].sort((a, b) => a - b)).toEqual(tickets);
      expect(tickets[0]).toBeGreaterThanOrEqual(1);
      expect(tickets.at(-1)).toBeLessThanOrEqual(1 + mails);

      const last = join(env.dir, 'backups', 'settled.sqlite');
      const r = await env.cli(['backup', last]);
      expect(r.code, r.stderr).toBe(0);
      expect(countTickets(last)).toEqual({ tickets: 1 + mails, integrity: 'ok', journal: 'delete' });
    } finally {
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited).toEqual({ code: 0, signal: null });
    }
    // Only finished copies: no temporary or journal files left behind.
    expect(readdirSync(join(env.dir, 'backups')).sort()).toEqual([
      'first.sqlite',
      'online-0.sqlite',
      'online-1.sqlite',
      'online-2.sqlite',
      'settled.sqlite',
    ]);
  });
});

// SIGHUP against the real daemon process: a broken template is refused and
// the acknowledgements keep using the old wording; a fixed one is taken.
// A daemon never starts with a broken template.

import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { customerMail, startTicketdEnv, SUPPORT, type DaemonProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const OLD_WORDING = 'Thank you for writing to us.';
const NEW_WORDING = 'Thanks a lot, a person will read this today.';

let env: TicketdEnv;
let templatesDir: string;
let ackText: string;
let original: string;

beforeAll(async () => {
  env = await startTicketdEnv();
  templatesDir = join(env.dir, 'templates');
  cpSync(join(packageRoot(), 'templates'), templatesDir, { recursive: true });
  ackText = join(templatesDir, 'ack.text.hbs');
  original = readFileSync(ackText, 'utf8');
  expect(original).toContain(OLD_WORDING);
  env.writeConfig((c) => (c.templatesDir = templatesDir));
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

/** The template with `{{reff}}` on a line of its own; returns that line's number. */
function breakTemplate(): number {
  const lines = original.split('\n');
  const at = lines.findIndex((l) => l.includes(OLD_WORDING));
  lines.splice(at + 1, 0, 'Your case: {{reff}}');
  writeFileSync(ackText, lines.join('\n'));
  return at + 2;
}

let sent = 0;
/** Puts a new customer mail in the mailbox and returns the text of the acknowledgement it gets. */
async function ackFor(n: number): Promise<string> {
  await env.dovecot.appendMessage(
    SUPPORT,
    'INBOX',
    customerMail({
      from: `Customer ${n} <c${n}@customer.example>`,
      subject: `Reload question ${n}`,
      messageId: `reload${n}@customer.example`,
    }),
  );
  const messages = await env.smtp.waitFor(++sent, 20_000);
  const ack = messages[sent - 1]!;
  expect(ack.envelope.to).toEqual([`c${n}@customer.example`]);
  return ack.parsed.text ?? '';
}

describe('SIGHUP reload', () => {
  let daemon: DaemonProcess;

  it('refuses a broken template, keeps the old one in force, then takes the fixed one', { timeout: 120_000 }, async () => {
    daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      expect(await ackFor(1)).toContain(OLD_WORDING);

      const line = breakTemplate();
      daemon.child.kill('SIGHUP');
      const refused = await daemon.waitForLog((e) => e.code === 'CONFIG_RELOAD_REFUSED');
      expect(refused.level).toBe('error');
      expect(refused.problems).toEqual([
        expect.objectContaining({ file: ackText, line, message: expect.stringContaining('unknown variable "reff"') }),
      ]);

      const withBroken = await ackFor(2);
      expect(withBroken).toContain(OLD_WORDING);
      expect(withBroken).not.toContain('Your case');

      writeFileSync(ackText, original.replace(OLD_WORDING, NEW_WORDING));
      daemon.child.kill('SIGHUP');
      await daemon.waitForLog((e) => e.code === 'CONFIG_RELOADED');
      const afterFix = await ackFor(3);
      expect(afterFix).toContain(NEW_WORDING);
      expect(afterFix).not.toContain(OLD_WORDING);
    } finally {
      daemon.child.kill('SIGTERM');
    }
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
    expect(daemon.lines.filter((l) => l.includes('"code":"CONFIG_RELOADED"'))).toHaveLength(1);
    await daemon.waitForLog((e) => e.code === 'DAEMON_STOPPED');
  });

  it('logs SIGHUP, applies what it can (a new mailbox, the outbox, the log level) and names each setting that needs a restart', {
    timeout: 120_000,
  }, async () => {
    daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      const withSales = (c: Record<string, any>) => {
        c.templatesDir = templatesDir;
        c.http.port = 8099;
        c.outbox.pollIntervalMs = 300;
        c.mailboxes[0].imap.pollIntervalMs = 700;
        c.mailboxes.push({
          ...c.mailboxes[0],
          name: 'sales',
          address: 'sales@example.com',
          referencePrefix: 'SALE',
          imap: { ...c.mailboxes[0].imap, auth: { user: 'sales@example.com', pass: 'secret' } },
        });
      };
      env.writeConfig(withSales);
      daemon.child.kill('SIGHUP');
      const signal = await daemon.waitForLog((e) => e.code === 'SIGNAL' && e.signal === 'SIGHUP');
      expect(signal.level).toBe('info');
      const reloaded = await daemon.waitForLog((e) => e.code === 'CONFIG_RELOADED');
      expect(reloaded.applied).toEqual(expect.arrayContaining(['mailboxes[1]', 'outbox.pollIntervalMs']));
      expect(reloaded.applied).not.toContain('http.port');
      expect(reloaded.applied).not.toContain('mailboxes[0].imap.pollIntervalMs');
      const restart = daemon.lines.filter((l) => l.includes('"code":"CONFIG_RESTART_NEEDED"')).map((l) => JSON.parse(l));
      expect(restart.map((e) => e.setting).sort()).toEqual(['http.port', 'mailboxes[0].imap.pollIntervalMs']);
      expect(restart.every((e) => e.level === 'warn' && e.msg.includes(e.setting))).toBe(true);

      // The new mailbox is watched without a restart: its mail gets an acknowledgement.
      await env.dovecot.appendMessage(
        'sales@example.com',
        'INBOX',
        customerMail({
          from: 'Buyer <buyer@customer.example>',
          subject: 'A quote, please',
          messageId: 'reload-sales@customer.example',
        }),
      );
      const messages = await env.smtp.waitFor(++sent, 20_000);
      expect(messages[sent - 1]!.envelope.to).toEqual(['buyer@customer.example']);
      expect(messages[sent - 1]!.parsed.subject).toContain('[SALE-');

      // A quieter log level is applied too: the next message is taken without an info line.
      env.writeConfig((c) => {
        withSales(c);
        c.log = { level: 'warn' };
      });
      daemon.child.kill('SIGHUP');
      const second = await daemon.waitForLog((e) => e.code === 'CONFIG_RELOADED' && e.applied.includes('log.level'));
      expect(second.restartNeeded.sort()).toEqual(['http.port', 'mailboxes[0].imap.pollIntervalMs']);
      const linesBefore = daemon.lines.length;
      await ackFor(4);
      expect(daemon.lines.slice(linesBefore).filter((l) => l.includes('"code":"MSG_TAKEN"'))).toEqual([]);
    } finally {
      daemon.child.kill('SIGTERM');
      env.writeConfig((c) => (c.templatesDir = templatesDir));
    }
    expect(await daemon.exited).toEqual({ code: 0, signal: null });
  });

  it('listens for SIGHUP while it is still starting: the signal neither ends it nor is lost', { timeout: 60_000 }, async () => {
    // The daemon's start waits while another process holds the database's
    // write lock, which makes the moment before "started" long enough to aim at.
    expect((await env.cli(['migrate'])).code).toBe(0);
    const db = new Database(join(env.dir, 'data', 'ticketd.sqlite'));
    db.exec('BEGIN EXCLUSIVE');
    let locked = true;
    const starting = env.spawnDaemon();
    try {
      // Linux shows the signals a process has a handler for in /proc/PID/status (SigCgt, bit 0 is SIGHUP).
      const catchesHup = () => {
        try {
          const mask = /SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${starting.child.pid}/status`, 'utf8'))![1]!;
          return (BigInt(`0x${mask}`) & 1n) === 1n;
        } catch {
          return false;
        }
      };
      // No hurry: the daemon cannot get past the lock while the test holds it.
      const until = Date.now() + 30_000;
      while (!catchesHup() && starting.child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      expect(catchesHup()).toBe(true);
      expect(starting.lines.some((l) => l.includes('DAEMON_STARTED'))).toBe(false);
      starting.child.kill('SIGHUP');
      db.exec('COMMIT');
      locked = false;
      await starting.waitForLog((e) => e.code === 'DAEMON_STARTED');
      await starting.waitForLog((e) => e.code === 'SIGNAL' && e.signal === 'SIGHUP');
      await starting.waitForLog((e) => e.code === 'CONFIG_RELOADED');
    } finally {
      if (locked) db.exec('COMMIT');
      db.close();
      starting.child.kill('SIGTERM');
    }
    expect(await starting.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses to start with a broken template: exit 78, naming file and line', { timeout: 60_000 }, async () => {
    const line = breakTemplate();
    try {
      const refused = env.spawnDaemon();
      expect(await refused.exited).toEqual({ code: 78, signal: null });
      const stderr = refused.lines.filter((l) => l.startsWith('stderr: ')).join('');
      expect(stderr).toContain(`${ackText}:${line}: unknown variable "reff"`);
      expect(refused.lines.some((l) => l.includes('DAEMON_STARTED'))).toBe(false);
      // `templates check` finds what the daemon refused, so an operator can check before reloading.
      const check = await env.cli(['templates', 'check']);
      expect(check.code).toBe(1);
      expect(check.stdout).toContain(`${ackText}:${line}: unknown variable "reff"`);
    } finally {
      writeFileSync(ackText, original);
    }
  });
});

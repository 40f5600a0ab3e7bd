// `ticketd ingest` runs once per delivered message, so it loads only what
// taking a message needs: the acknowledgement's templates (not the other
// mail kinds, not the status page), not the mail transport nor the charset
// detector a plain message does not need, and, on a database already at the
// latest schema version, not one migration file. `start`, `check-config` and
// `templates check` stay strict about every template.

import { spawn } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUERY_DIRS } from '../../src/store/named-queries.js';
import { freePort } from '../harness/free-port.js';
import { customerMail, startTicketdEnv, type TicketdEnv } from '../harness/ticketd-env.js';

const ROOT = resolve(import.meta.dirname, '../..');

let env: TicketdEnv;

beforeAll(async () => {
  env = await startTicketdEnv();
});
afterAll(async () => {
  await env?.stop();
});

async function ingest(subject: string, id: string, config?: string) {
  const r = await env.cli(['ingest', '--mailbox', 'support', '--json'], {
    input: customerMail({ subject, messageId: `${id}@customer.example`, from: `${id}@customer.example` }),
    ...(config ? { config } : {}),
  });
  return { ...r, results: r.code === 0 ? (JSON.parse(r.stdout) as { outcome: string; ackQueued: boolean }[]) : [] };
}

describe('ticketd ingest loads only what it uses', () => {
  it('takes mail while a template of another kind or of the status page is broken, which start and check still refuse', async () => {
    const templates = join(env.dir, 'templates');
    cpSync(join(ROOT, 'templates'), templates, { recursive: true });
    appendFileSync(join(templates, 'delay-notice.text.hbs'), '\n{{no_such_variable}}\n');
    appendFileSync(join(templates, 'web', 'status.hbs'), '\n{{#if}}\n');
    const port = await freePort();
    env.writeConfig((c) => {
      c.templatesDir = templates;
      c.http = { enabled: true, host: '127.0.0.1', port };
    });
    try {
      const taken = await ingest('Broken notice elsewhere', 'lazy1');
      expect(taken.code, taken.stderr).toBe(0);
      expect(taken.results).toEqual([expect.objectContaining({ outcome: 'taken', ackQueued: true })]);

      const check = await env.cli(['templates', 'check']);
      expect(check.code).toBe(1);
      expect(check.stdout).toContain('delay-notice.text.hbs');
      expect(check.stdout).toContain('status.hbs');
      expect((await env.cli(['check-config'])).code).toBe(78);
      const daemon = env.spawnDaemon();
      expect((await daemon.exited).code).toBe(78);

      // The acknowledgement itself is still checked before anything is taken: the MTA keeps the mail.
      appendFileSync(join(templates, 'ack.subject.hbs'), '{{no_such_variable}}');
      const refused = await ingest('Broken ack', 'lazy2');
      expect(refused.code).toBe(75);
      expect(refused.stderr).toContain('TICKETD_TEMPLATES_INVALID');
      // Each problem as file:line: message, so the operator knows what to fix.
      expect(refused.stderr).toMatch(/ack\.subject\.hbs(:\d+)?: unknown variable/);
    } finally {
      env.writeConfig();
    }
  });

  it('takes a plain message without loading the mail transport or the charset detector', async () => {
    // ingest would fail if it imported either package.
    const run = await ingestRefusing(
      ['nodemailer', 'jschardet'],
      customerMail({ subject: 'Plain', messageId: 'plain1@customer.example', from: 'plain1@customer.example' }),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([expect.objectContaining({ outcome: 'taken', ackQueued: true })]);
  });

  it('does not read the migrations on a database already at the latest version', async () => {
    // A copy of the installed package whose migration files can be taken away after the first run.
    const pkg = mkdtempSync(join(tmpdir(), 'ticketd-pkg-'));
    try {
      cpSync(join(ROOT, 'dist', 'src'), join(pkg, 'dist', 'src'), { recursive: true });
      for (const dir of ['templates', 'migrations']) cpSync(join(ROOT, dir), join(pkg, dir), { recursive: true });
      for (const dir of QUERY_DIRS) {
        mkdirSync(join(pkg, dir), { recursive: true });
        for (const f of readdirSync(join(ROOT, dir)).filter((f) => f.endsWith('.sql')))
          copyFileSync(join(ROOT, dir, f), join(pkg, dir, f));
      }
      copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
      symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(pkg, 'node_modules'));
      const cli = join(pkg, 'dist', 'src', 'cli', 'main.js');
      const run = (id: string) =>
        new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
          const child = spawn(process.execPath, [cli, 'ingest', '--mailbox', 'support', '--json', '--config', env.configPath]);
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (d) => (stdout += d));
          child.stderr.on('data', (d) => (stderr += d));
          child.on('close', (code) => done({ code, stdout, stderr }));
          child.stdin.end(
            customerMail({ subject: `Migrations ${id}`, messageId: `${id}@customer.example`, from: `${id}@customer.example` }),
          );
        });

      const migrations = readdirSync(join(pkg, 'migrations')).filter((f) => f.endsWith('.sql'));
      const latest = Math.max(...migrations.map((f) => Number.parseInt(f, 10)));
      const database = join(env.dir, 'data', 'ticketd.sqlite');
      rmSync(join(env.dir, 'data'), { recursive: true, force: true });

      // A new database is created and migrated by the first delivery, as before.
      const first = await run('mig1');
      expect(first.code, first.stderr).toBe(0);
      const db = new BetterSqlite3(database, { readonly: true });
      try {
        expect(db.pragma('user_version', { simple: true })).toBe(latest);
      } finally {
        db.close();
      }

      // Unreadable migrations do not matter once nothing is pending.
      for (const f of migrations) {
        rmSync(join(pkg, 'migrations', f));
        mkdirSync(join(pkg, 'migrations', f));
      }
      const second = await run('mig2');
      expect(second.code, second.stderr).toBe(0);
      expect(JSON.parse(second.stdout)).toEqual([expect.objectContaining({ outcome: 'taken' })]);
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });

  it('takes a plain message on SQLite without loading the PostgreSQL client', async () => {
    const run = await ingestRefusing(
      ['pg', 'pg-connection-string'],
      customerMail({ subject: 'No pg', messageId: 'nopg1@customer.example', from: 'nopg1@customer.example' }),
    );
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([expect.objectContaining({ outcome: 'taken', ackQueued: true })]);
  });
});

/** Runs `ticketd ingest` on `mail` with a resolve hook that fails the run if it imports any of `refused`. */
function ingestRefusing(refused: string[], mail: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const hook = `export async function resolve(specifier, context, next) {
    if (${JSON.stringify(refused)}.includes(specifier)) throw new Error('ingest loaded ' + specifier);
    return next(specifier, context);
  }`;
  const preload = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  const cli = join(ROOT, 'dist', 'src', 'cli', 'main.js');
  return new Promise((done) => {
    const child = spawn(process.execPath, [
      '--import',
      `data:text/javascript,${encodeURIComponent(preload)}`,
      cli,
      'ingest',
      '--mailbox',
      'support',
      '--json',
      '--config',
      env.configPath,
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(mail);
  });
}

// What the command line promises an operator (README "Command line"): exit
// codes, a read-only check-config, migrations only by `start` and `migrate`.
// No mail server is needed: every config here sends into a folder.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { latestMigrationVersion } from '../../src/store/migrate.js';
import { freePort } from '../harness/free-port.js';
import { CLI } from '../harness/ticketd-env.js';

const root = mkdtempSync(join(tmpdir(), 'ticketd-cli-promises-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; with `closedStdout` its stdout is a pipe nobody reads, like `| head -0`. */
function cli(args: string[], opts: { closedStdout?: boolean; input?: string } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'pipe' });
    child.stdin.end(opts.input ?? '');
    let stdout = '';
    let stderr = '';
    if (opts.closedStdout) child.stdout.destroy();
    else child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

let n = 0;
/** A fresh folder with a config (database under data/, not created) and whatever `edit` changes. */
function setup(edit: (cfg: Record<string, any>) => void = () => {}): { dir: string; config: string; data: string } {
  const dir = join(root, `case-${++n}`);
  mkdirSync(dir);
  const cfg: Record<string, any> = {
    database: './data/ticketd.sqlite',
    publicUrl: 'https://support.example.com',
    http: { enabled: false },
    smtp: { transport: 'file', fileDir: './outbox', from: 'Support <support@example.com>' },
    mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
  };
  edit(cfg);
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify(cfg));
  return { dir, config, data: join(dir, 'data') };
}

describe('ticketd migrate', () => {
  it('creates and migrates a new database', async () => {
    const { config, data } = setup();
    const r = await cli(['migrate', '--config', config]);
    expect(r.stderr).toMatch(/migrated database from version 0 to \d+/);
    expect(r.code).toBe(0);
    expect(existsSync(join(data, 'ticketd.sqlite'))).toBe(true);
    const again = await cli(['migrate', '--config', config]);
    expect(again.stderr).toMatch(/database is at version \d+/);
  });
});

describe('exit codes and output', () => {
  it('prints its version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    ['an unknown option', ['tickets', 'list', '--bogus']],
    ['an unknown command', ['no-such-command']],
    ['a value outside the choices', ['tickets', 'list', '--status', 'nonsense']],
    ['a missing required option', ['tickets', 'reply', 'ACME-7K3QH9']],
    ['a missing argument', ['tickets', 'show']],
    ['no command at all', []],
  ])('exits 64 for %s', async (_what, args) => {
    const { config } = setup();
    const r = await cli([...args, '--config', config]);
    expect(r.code, r.stderr).toBe(64);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('ends quietly when the reader of its output has gone', async () => {
    const { config } = setup();
    for (const args of [['doctor'], ['systemd-unit'], ['tickets', 'list']]) {
      const r = await cli([...args, '--config', config], { closedStdout: true });
      expect(r.stderr, args.join(' ')).not.toContain('EPIPE');
      expect(r.code, args.join(' ')).toBe(0);
    }
  });
});

describe('ticketd systemd-unit', () => {
  it('starts the service with the --config it was given', async () => {
    const { config } = setup();
    const r = await cli(['systemd-unit', '--config', config]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(` start --config ${config}\n`);
    expect(r.stdout).toMatch(/^RestartPreventExitStatus=78$/m);
  });
});

describe('ticketd check-config', () => {
  it('creates nothing: no data folder, database or link key', async () => {
    const { dir, config, data } = setup();
    const r = await cli(['check-config', '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(data)).toBe(false);
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('leaves an older database unmigrated', async () => {
    const { config, data } = setup();
    mkdirSync(data);
    const file = join(data, 'ticketd.sqlite');
    new BetterSqlite3(file).close();
    const r = await cli(['check-config', '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const db = new BetterSqlite3(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    db.close();
    expect(readdirSync(data)).toEqual(['ticketd.sqlite']);
  });

  it('refuses a passFile that cannot be read, by JSON path', async () => {
    const { config } = setup((c) => {
      c.smtp = { host: 'smtp.example.com', from: 'support@example.com', auth: { user: 'relay', passFile: './no-such.pass' } };
    });
    const r = await cli(['check-config', '--config', config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^config: smtp\.auth\.passFile: cannot read \S+no-such\.pass \(ENOENT\)$/m);
  });

  it('reports a misspelt calendar time zone by JSON path, together with the other problems', async () => {
    const { config } = setup((c) => {
      c.publicUrl = 'not a url';
      c.calendars = { office: { timezone: 'Europe/Berln', hours: { mon: '09:00-17:00' } } };
    });
    const r = await cli(['check-config', '--config', config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^config: calendars\.office\.timezone: expected an IANA time zone/m);
    expect(r.stderr).toMatch(/^config: publicUrl: /m);
  });

  it('reads durations with the grammar start uses', async () => {
    const { config } = setup((c) => (c.outbox = { retrySchedule: ['1m', '30m 1h'] }));
    const r = await cli(['check-config', '--config', config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^config: outbox\.retrySchedule\[1\]: invalid duration "30m 1h"/m);
  });

  it('prints durations, percentages and calendars as the operator wrote them', async () => {
    const office = { timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' }, holidays: ['2026-12-25'] };
    const { config } = setup((c) => {
      c.outbox = { retrySchedule: ['30m', '1h 30m'] };
      c.calendars = { office };
      c.sla = {
        policies: [
          {
            name: 'std',
            match: {},
            firstResponse: '4h',
            resolution: '1d 4h',
            calendar: 'office',
            customerNotices: [{ at: '100%', repeatEvery: '24h', max: 2 }],
            staffWarnings: ['12.5%'],
          },
        ],
      };
    });
    const r = await cli(['check-config', '--json', '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed.outbox.retrySchedule).toEqual(['30m', '1h 30m']);
    expect(printed.calendars.office).toEqual(office);
    expect(printed.sla.policies[0]).toMatchObject({
      firstResponse: '4h',
      resolution: '1d 4h',
      customerNotices: [{ at: '100%', repeatEvery: '24h', max: 2 }],
      staffWarnings: ['12.5%'],
    });
  });

  it('refuses what the SLA engine would refuse at start: a calendar that never opens', async () => {
    const { config } = setup((c) => (c.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '17:00-09:00' } } }));
    const r = await cli(['check-config', '--config', config]);
    expect(r.code, r.stderr).toBe(78);
    expect(r.stderr).toMatch(/^config: calendars\.office: /m);
  });
});

describe('ticketd start', () => {
  it('refuses a misspelt calendar time zone as a configuration error (78), which the unit does not restart', async () => {
    const { config, data } = setup(
      (c) => (c.calendars = { office: { timezone: 'Europe/Berln', hours: { mon: '09:00-17:00' } } }),
    );
    const r = await cli(['start', '--config', config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/^config: calendars\.office\.timezone: /m);
    expect(existsSync(data)).toBe(false);
  });
});

describe('ticketd doctor', () => {
  it('fails the config line for a time zone start refuses', async () => {
    const { config } = setup((c) => (c.calendars = { office: { timezone: 'Europe/Berln', hours: { mon: '09:00-17:00' } } }));
    const r = await cli(['doctor', '--config', config]);
    expect(r.stdout).toMatch(/^FAILED {2}config: calendars\.office\.timezone: /m);
    expect(r.code).toBe(1);
  });
});

describe('pending migrations', () => {
  /** A database as ticketd left it before the last upgrade: the first three migrations applied. */
  function olderDatabase(file: string): void {
    mkdirSync(join(file, '..'), { recursive: true });
    const db = new BetterSqlite3(file);
    for (const name of ['001_initial.sql', '002_sla.sql', '003_ticket_team.sql']) {
      db.exec(readFileSync(join(packageRoot(), 'migrations', name), 'utf8'));
    }
    db.pragma('user_version = 3');
    db.close();
  }
  const versionOf = (file: string) => {
    const db = new BetterSqlite3(file, { readonly: true });
    try {
      return db.pragma('user_version', { simple: true });
    } finally {
      db.close();
    }
  };

  it('are refused by other commands, which say to run ticketd migrate; migrate then applies them', async () => {
    const { config, data } = setup();
    const file = join(data, 'ticketd.sqlite');
    olderDatabase(file);
    const list = await cli(['tickets', 'list', '--config', config]);
    expect(list.code).toBe(1);
    expect(list.stderr).toContain('TICKETD_MIGRATION_PENDING');
    expect(list.stderr).toContain('run `ticketd migrate`');
    // An MTA keeps the mail queued (75) until the operator has migrated.
    const mail =
      'From: a@customer.example\r\nTo: support@example.com\r\nSubject: hi\r\nMessage-ID: <p1@customer.example>\r\n\r\nhello\r\n';
    const ingest = await cli(['ingest', '--mailbox', 'support', '--config', config], { input: mail });
    expect(ingest.code).toBe(75);
    expect(ingest.stderr).toContain('ticketd migrate');
    expect(versionOf(file)).toBe(3);

    const migrate = await cli(['migrate', '--config', config]);
    expect(migrate.stderr).toContain('migrated database from version 3');
    const after = await cli(['tickets', 'list', '--config', config]);
    expect(after.code, after.stderr).toBe(0);
  });

  it('of a brand-new database are applied by the first command that opens it', async () => {
    const { config, data } = setup();
    const r = await cli(['tickets', 'list', '--config', config]);
    expect(r.code, r.stderr).toBe(0);
    expect(versionOf(join(data, 'ticketd.sqlite'))).toBe(latestMigrationVersion());
  });
});

describe('doctor and start agree', () => {
  it('start refuses a passFile that cannot be read (78, nothing created), and doctor fails its config line for it', async () => {
    const { config, data } = setup((c) => {
      c.smtp = { host: '127.0.0.1', port: 9, from: 'support@example.com', auth: { user: 'relay', passFile: './no-such.pass' } };
    });
    const start = await cli(['start', '--config', config]);
    expect(start.code, start.stderr).toBe(78);
    expect(start.stderr).toMatch(/^config: smtp\.auth\.passFile: cannot read \S+no-such\.pass \(ENOENT\)$/m);
    expect(existsSync(data)).toBe(false);
    const doctor = await cli(['doctor', '--config', config]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/^FAILED {2}config: smtp\.auth\.passFile: cannot read \S+no-such\.pass \(ENOENT\)$/m);
  });

  it('doctor counts the LMTP port as fine while the running ticketd holds it', async () => {
    const port = await freePort();
    const { config } = setup((c) => (c.inbound = { host: '127.0.0.1', port }));
    const daemon = spawn(process.execPath, [CLI, 'start', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const t = setTimeout(() => reject(new Error(`the daemon did not start: ${out}`)), 30_000);
        daemon.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('"code":"DAEMON_STARTED"')) {
            clearTimeout(t);
            resolve();
          }
        });
      });
      const doctor = await cli(['doctor', '--config', config]);
      expect(doctor.stdout).toContain(`OK      inbound: 127.0.0.1:${port} is in use by a running ticketd (it greets as ticketd)`);
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon.on('close', r));
    }
  });

  it('doctor checks the LMTP listener port that start would fail to listen on', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const { config } = setup((c) => (c.inbound = { host: '127.0.0.1', port }));
      const doctor = await cli(['doctor', '--config', config]);
      expect(doctor.code).toBe(1);
      expect(doctor.stdout).toContain(`FAILED  inbound: 127.0.0.1:${port} is in use by another program`);
      const start = await cli(['start', '--config', config]);
      expect(start.code).not.toBe(0);
      expect(start.stderr).toContain(`127.0.0.1:${port}`);
    } finally {
      taken.close();
    }
  });
});

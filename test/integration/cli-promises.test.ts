// What the command line promises an operator (README "Command line"): exit
// codes, a read-only check-config, migrations only by `start` and `migrate`.
// No mail server is needed: every config here sends into a folder.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../harness/ticketd-env.js';

const root = mkdtempSync(join(tmpdir(), 'ticketd-cli-promises-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; with `closedStdout` its stdout is a pipe nobody reads, like `| head -0`. */
function cli(args: string[], opts: { closedStdout?: boolean } = {}): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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

// What `npm test` does to a machine (test/setup-machine.sh): Debian packages
// without Recommends, and never a package removed to make room for one. The
// script runs against stand-ins for apt-get, dpkg-query and id on PATH, which
// record every call, so nothing is installed on the machine running the test.

import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';

const SCRIPT = join(packageRoot(), 'test', 'setup-machine.sh');

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/**
 * Runs the script with `missing` reported as not installed and apt-get's
 * simulated install printing `simulation`; the real install fails, so the
 * script stops right after it and touches nothing else. Returns the run and
 * every apt-get call, one per line.
 */
function setupWith(missing: string[], simulation: string): { status: number | null; stderr: string; apt: string[] } {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-setup-machine-'));
  const calls = join(dir, 'apt-calls');
  const stub = (name: string, body: string) => {
    writeFileSync(join(dir!, name), `#!/usr/bin/env bash\n${body}\n`);
    chmodSync(join(dir!, name), 0o755);
  };
  writeFileSync(join(dir, 'simulation'), simulation);
  stub('id', 'echo 0');
  stub(
    'dpkg-query',
    `for pkg in ${missing.join(' ')}; do [[ \${@: -1} == "$pkg" ]] && exit 1; done\nprintf 'install ok installed'`,
  );
  stub(
    'apt-get',
    `echo "$*" >> ${JSON.stringify(calls)}
case " $* " in
  *" update "*) exit 0 ;;
  *" -s "*) cat ${JSON.stringify(join(dir, 'simulation'))} ;;
  *) exit 100 ;;
esac`,
  );
  const run = spawnSync('bash', [SCRIPT], {
    env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    encoding: 'utf8',
  });
  let apt: string[] = [];
  try {
    apt = readFileSync(calls, 'utf8').trim().split('\n');
  } catch {
    // apt-get was never called
  }
  return { status: run.status, stderr: run.stderr, apt };
}

describe('npm test on a machine that lacks a package', () => {
  it('installs it without Recommends', () => {
    const r = setupWith(['postgresql'], 'Inst postgresql (15+248 Debian:12/stable [all])\n');
    const installs = r.apt.filter((c) => /\binstall\b/.test(c));
    expect(installs).toEqual([
      expect.stringMatching(/^install -s .*--no-install-recommends postgresql$/),
      expect.stringMatching(/^install -y .*--no-install-recommends postgresql$/),
    ]);
    expect(r.stderr).toContain('installing postgresql (without Recommends)');
  });

  it('stops and names the conflicting package instead of letting apt remove it', () => {
    const r = setupWith(['postgresql'], 'Remv dovecot-imapd [1:2.3.19.1]\nInst postgresql (15+248 Debian:12/stable [all])\n');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/would remove: dovecot-imapd; install them by hand after resolving that conflict/);
    // Only the simulation ran: nothing was installed, so nothing was removed.
    expect(r.apt.filter((c) => /\binstall\b/.test(c) && !/ -s /.test(c))).toEqual([]);
  });
});

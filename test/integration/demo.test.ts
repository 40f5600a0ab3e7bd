// The README's first command: the demo needs no mail server and shows
// tickets, acknowledgement files and working status links.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { packageRoot } from '../../src/config/package-root.js';
import { freePort } from '../harness/free-port.js';
import { CLI } from '../harness/ticketd-env.js';

const dir = mkdtempSync(join(tmpdir(), 'ticketd-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runDemo(args: string[], inDir = dir): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [CLI, 'demo', '--dir', inDir, ...args]);
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run(process.execPath, [CLI, ...args]);
}

/** `npm run demo` is `sh scripts/demo.sh`; run from the package folder as npm does. */
function runScript(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run('sh', [join(packageRoot(), 'scripts/demo.sh'), ...args], { ...process.env, ...env });
}

function run(
  command: string,
  args: string[],
  env = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('delivers the samples over LMTP, threads the reply and the out-of-office, and prints working links', async () => {
  const httpPort = await freePort();
  const lmtpPort = await freePort();
  const r = await runDemo(['--exit', '--http-port', String(httpPort), '--lmtp-port', String(lmtpPort)]);
  expect(r.code, r.stderr).toBe(0);
  const refs = r.stdout.match(/^DEMO-[0-9A-Z]{6}/gm) ?? [];
  expect(refs).toHaveLength(2);
  // Jane's reply and Omar's out-of-office joined their tickets: three messages each.
  expect(r.stdout).toMatch(/DEMO-\w{6}\s+open\s+jane@customer\.example\s+3\s/);
  expect(r.stdout).toMatch(/DEMO-\w{6}\s+open\s+omar@other\.example\s+3\s/);
  expect(readdirSync(join(dir, 'outbox')).filter((f) => f.endsWith('.eml'))).toHaveLength(2);
  const links = r.stdout.match(/http:\/\/127\.0\.0\.1:\d+\/t\/[A-Za-z0-9_-]{43}/g) ?? [];
  expect(links).toHaveLength(2);

  // Run again without --exit: the same samples are recognised, nothing doubles, and the links open.
  const child = spawn(
    process.execPath,
    [CLI, 'demo', '--dir', dir, '--http-port', String(httpPort), '--lmtp-port', String(lmtpPort)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`demo did not come up: ${out}`)), 30_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('Ctrl-C stops')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
    expect(out.match(/^DEMO-[0-9A-Z]{6}/gm)).toHaveLength(2);
    for (const link of links) {
      const page = await fetch(link);
      expect(page.status).toBe(200);
      const html = await page.text();
      expect(refs.filter((ref) => html.includes(ref))).toHaveLength(1);
    }
  } finally {
    child.kill('SIGINT');
    await new Promise((r) => child.on('close', r));
  }
});

it('ends by naming its data folder and three commands to try, which work as printed', async () => {
  const own = mkdtempSync(join(tmpdir(), 'ticketd-demo-next-'));
  try {
    const r = await runDemo(['--exit', '--http-port', String(await freePort()), '--lmtp-port', String(await freePort())], own);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`The demo's data folder is ${own}`);
    const commands = r.stdout.match(/^ {2}node \S+ --config \S+ tickets .*$/gm) ?? [];
    expect(commands).toHaveLength(3);
    // The second one shows Jane's ticket, as printed (run from the same folder the demo ran in).
    const args = commands[1]!.trim().split(/\s+/).slice(1);
    const show = await run(process.execPath, args);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain('The invoice PDF will not open');
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
});

it('names the option to change when a port is taken, instead of a bare EADDRINUSE', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  const port = (taken.address() as AddressInfo).port;
  const own = mkdtempSync(join(tmpdir(), 'ticketd-demo-port-'));
  try {
    const http = await runDemo(['--exit', '--http-port', String(port), '--lmtp-port', String(await freePort())], own);
    expect(http.code).toBe(1);
    expect(http.stderr).toContain(`demo: port ${port} for the status page cannot be used: another program is using it.`);
    expect(http.stderr).toContain(`npm run demo -- --http-port ${port + 1}`);
    expect(http.stderr).not.toMatch(/^\s+at /m);

    const lmtp = await runDemo(['--exit', '--http-port', String(await freePort()), '--lmtp-port', String(port)], own);
    expect(lmtp.code).toBe(1);
    expect(lmtp.stderr).toContain(`npm run demo -- --lmtp-port ${port + 1}`);

    // `start` names the config key to change.
    const config = join(own, 'config.json');
    const cfg = JSON.parse(readFileSync(config, 'utf8'));
    cfg.http.port = port;
    cfg.inbound.port = await freePort();
    writeFileSync(config, JSON.stringify(cfg));
    const start = await runCli(['start', '--config', config]);
    expect(start.code).toBe(1);
    expect(start.stderr).toContain(
      `TICKETD_WEB_LISTEN_FAILED: cannot listen on 127.0.0.1:${port} (EADDRINUSE): another program is using that port; set http.port to a free port`,
    );
  } finally {
    taken.close();
    rmSync(own, { recursive: true, force: true });
  }
});

it('npm run demo says what it is doing before each long step', async () => {
  const own = mkdtempSync(join(tmpdir(), 'ticketd-demo-script-'));
  try {
    // A dry run of npm install: the shared node_modules stays as it is.
    const r = await runScript(
      ['--dir', own, '--exit', '--http-port', String(await freePort()), '--lmtp-port', String(await freePort())],
      {
        npm_config_dry_run: 'true',
        npm_config_prefer_offline: 'true',
      },
    );
    expect(r.code, r.stderr).toBe(0);
    const steps = r.stdout.match(/^==> .*$/gm) ?? [];
    expect(steps).toEqual([
      expect.stringMatching(/^==> 1\/3 npm packages: installing/),
      // The suite runs on a fresh build, so the demo does not compile again.
      '==> 2/3 TypeScript: dist/ is up to date',
      expect.stringMatching(/^==> 3\/3 starting ticketd/),
    ]);
    expect(r.stdout.indexOf('==> 3/3')).toBeLessThan(r.stdout.indexOf('Tickets:'));
    expect(`${r.stdout}${r.stderr}`).not.toContain('EBADENGINE');
  } finally {
    rmSync(own, { recursive: true, force: true });
  }
});

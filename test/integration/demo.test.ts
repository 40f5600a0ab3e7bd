// The README's first command: the demo needs no mail server and shows
// tickets, acknowledgement files and working status links.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../harness/free-port.js';
import { CLI } from '../harness/ticketd-env.js';

const dir = mkdtempSync(join(tmpdir(), 'ticketd-demo-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runDemo(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'demo', '--dir', dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  const child = spawn(process.execPath, [CLI, 'demo', '--dir', dir, '--http-port', String(httpPort), '--lmtp-port', String(lmtpPort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

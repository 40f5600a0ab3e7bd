// `ticketd quarantine list|show|retry` on real quarantined mail: over-size
// messages taken by pipe and by IMAP, released after the limit was raised,
// with the acknowledgement sent by the running daemon.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerMail, startTicketdEnv, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;

function limit(maxMessageBytes: number) {
  env.writeConfig((c) => (c.limits = { maxMessageBytes }));
}

async function quarantine(...args: string[]) {
  return env.cli(['quarantine', ...args]);
}

async function listJson(all = false): Promise<any[]> {
  const r = await quarantine('list', '--json', ...(all ? ['--all'] : []));
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

async function ingestBig(subject: string, from: string, bodyBytes: number): Promise<number> {
  const r = await env.cli(['ingest', '--mailbox', 'support', '--json'], {
    input: customerMail({
      subject,
      from,
      messageId: `${from.split('@')[0]}-${bodyBytes}@customer.example`,
      body: `BODYMARK ${'q'.repeat(bodyBytes)}`,
    }),
  });
  expect(r.code, r.stderr).toBe(0);
  const [result] = JSON.parse(r.stdout);
  expect(result.outcome).toBe('quarantined');
  return result.quarantineId;
}

async function ticketSubjects(): Promise<string[]> {
  const r = await env.cli(['tickets', 'list', '--json']);
  return (JSON.parse(r.stdout) as { subject: string }[]).map((t) => t.subject);
}

describe('ticketd quarantine', () => {
  beforeAll(async () => {
    env = await startTicketdEnv();
  }, 60_000);
  afterAll(async () => {
    await env?.stop();
  });

  let bigId = 0;

  it('lists an over-size message with its reason and shows its headers, not its body', async () => {
    limit(20_000);
    bigId = await ingestBig('Huge report', 'hugo@customer.example', 40_000);

    const entries = await listJson();
    expect(entries).toEqual([
      {
        id: bigId,
        mailbox: 'support',
        createdAt: expect.any(String),
        size: expect.any(Number),
        reason: expect.stringMatching(/^too-large: \d+ bytes > 20000$/),
        origin: { via: 'pipe', mailbox: 'support' },
        releasedAt: null,
        releaseOutcome: null,
      },
    ]);
    expect(entries[0].size).toBeGreaterThan(40_000);
    const table = await quarantine('list');
    expect(table.stdout.split('\n')[0]).toMatch(/^id\s+mailbox\s+when\s+size\s+reason$/);
    expect(table.stdout).toMatch(new RegExp(`^${bigId}\\s+support\\s+\\S+\\s+\\d+\\s+too-large: `, 'm'));

    const shown = await quarantine('show', String(bigId));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^reason\s+too-large: /m);
    expect(shown.stdout).toMatch(/^origin\s+pipe support$/m);
    expect(shown.stdout).toContain('Subject: Huge report');
    expect(shown.stdout).toContain('Message-ID: <hugo-40000@customer.example>');
    expect(shown.stdout).not.toContain('BODYMARK');

    const raw = await quarantine('show', String(bigId), '--raw');
    expect(raw.stdout).toContain('Subject: Huge report');
    expect(raw.stdout).toContain(`BODYMARK ${'q'.repeat(40_000)}`);

    const json = JSON.parse((await quarantine('show', String(bigId), '--json')).stdout);
    expect(json.headers).toContain('From: hugo@customer.example');
    expect(json.headers).not.toContain('BODYMARK');

    expect((await quarantine('show', '999')).code).toBe(64);
  }, 60_000);

  it('after the limit was raised, retry ID makes a ticket and the running daemon sends its acknowledgement', async () => {
    limit(100_000);
    const daemon = env.spawnDaemon();
    try {
      await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
      const r = await quarantine('retry', String(bigId), '--json');
      expect(r.code, r.stderr).toBe(0);
      const [line] = JSON.parse(r.stdout);
      expect(line).toMatchObject({ id: bigId, mailbox: 'support', outcome: 'taken', quarantineId: null });
      expect(line.ref).toMatch(/^ACME-[0-9A-Z]{6}$/);

      const [ack] = await env.smtp.waitFor(1, 20_000);
      expect(ack!.envelope.to).toEqual(['hugo@customer.example']);
      expect(ack!.parsed.subject).toContain(`[${line.ref}]`);
      expect(await ticketSubjects()).toContain('Huge report');

      expect(await listJson()).toEqual([]);
      const released = (await listJson(true)).find((e) => e.id === bigId);
      expect(released.releasedAt).not.toBeNull();
      expect(released.releaseOutcome).toBe(`taken ${line.ref}`);

      const again = await quarantine('retry', String(bigId));
      expect(again.code).toBe(64);
      expect(again.stderr).toContain(`was already released (taken ${line.ref})`);
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
  }, 60_000);

  it('retry --all works through several; one that fails again gets a new entry with the new reason', async () => {
    limit(20_000);
    const ids = [
      await ingestBig('Backlog A', 'anna@customer.example', 30_000),
      await ingestBig('Backlog B', 'bert@customer.example', 30_000),
      await ingestBig('Backlog C', 'cora@customer.example', 30_000),
      await ingestBig('Still huge', 'dirk@customer.example', 150_000),
    ];
    limit(100_000);

    const r = await quarantine('retry', '--all', '--json');
    // Not every entry left the quarantine: scripts see it in the exit code.
    expect(r.code, r.stderr).toBe(1);
    // Not a terminal: plain progress lines, no carriage returns.
    expect(r.stderr).toMatch(/^quarantine retry: 4\/4 done in \d+\.\d s$/m);
    expect(r.stderr).not.toContain('\r');
    const lines = JSON.parse(r.stdout) as any[];
    expect(lines.map((l) => [l.id, l.outcome])).toEqual([
      [ids[0], 'taken'],
      [ids[1], 'taken'],
      [ids[2], 'taken'],
      [ids[3], 'quarantined-again'],
    ]);
    const requeued = lines[3];
    expect(requeued.reason).toMatch(/^too-large: \d+ bytes > 100000$/);

    const open = await listJson();
    expect(open.map((e) => [e.id, e.origin.via, e.reason])).toEqual([[requeued.quarantineId, 'retry', requeued.reason]]);
    const old = (await listJson(true)).find((e) => e.id === ids[3]);
    expect(old.releaseOutcome).toBe(`quarantined-again #${requeued.quarantineId}`);
    expect(await ticketSubjects()).toEqual(expect.arrayContaining(['Backlog A', 'Backlog B', 'Backlog C']));
    expect(await ticketSubjects()).not.toContain('Still huge');
  }, 60_000);

  it('skips an IMAP entry of which only the head was stored, pointing to the full message on the server', async () => {
    limit(20_000);
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Huge by IMAP', messageId: 'imap-huge@customer.example', body: 'w'.repeat(100_000) }),
    );
    const td = await env.open();
    try {
      await td.cycle();
    } finally {
      await td.close();
    }
    const entry = (await listJson()).find((e) => e.origin.via === 'imap');
    expect(entry.reason).toMatch(/^too-large: /);
    expect(entry.size).toBeLessThan(100_000);

    limit(200_000);
    const r = await quarantine('retry', String(entry.id), '--json');
    expect(r.code).toBe(1);
    const [line] = JSON.parse(r.stdout);
    expect(line.outcome).toBe('skipped');
    expect(line.reason).toContain(`only the first ${entry.size} of`);
    expect(line.reason).toContain('quarantine folder');
    expect((await listJson()).map((e) => e.id)).toContain(entry.id);
    expect(await ticketSubjects()).not.toContain('Huge by IMAP');
  }, 60_000);

  it('refuses a wrong call with exit 64', async () => {
    expect((await quarantine('retry')).code).toBe(64);
    expect((await quarantine('retry', '1', '--all')).code).toBe(64);
    expect((await quarantine('retry', 'abc')).code).toBe(64);
    expect((await quarantine('retry', '424242')).code).toBe(64);
  }, 30_000);
});

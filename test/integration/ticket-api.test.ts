// The JSON API on the running daemon: bearer tokens made with the command
// line (none, unknown, revoked, read-only on a write route), and actions that
// run the same rules as the command line and show in `tickets show --json`.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/free-port.js';
import { ratingLinks } from '../harness/rating-links.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, startTicketdEnv, type DaemonProcess, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;
let daemon: DaemonProcess;
let base = '';
let ref = '';
const tokens: Record<string, string> = {};

function config(c: Record<string, any>, port: number, api: boolean) {
  c.http = { enabled: true, host: '127.0.0.1', port, api: { enabled: api } };
  c.mailboxes[0].defaultQueue = 'Front desk';
  c.queues = [
    { name: 'Front desk', staff: ['sam@example.com'] },
    { name: 'Hardware', staff: ['tom@example.com'] },
    { name: 'Warehouse', staff: ['wanda@example.com'] },
  ];
  c.routing = [{ name: 'machines', match: { subject: 'projector' }, set: { queue: 'Hardware' } }];
}

async function cliOk(args: string[], input?: string): Promise<string> {
  const r = await env.cli(args, input === undefined ? {} : { input });
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

const show = async (ticket: string) => JSON.parse(await cliOk(['tickets', 'show', ticket, '--json']));

async function call(
  method: 'GET' | 'POST',
  path: string,
  opts: { token?: string; body?: unknown; authorization?: string } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** The mails to the customer about a ticket the SMTP server received, once `count` of them are in. */
async function customerMailsAbout(ticket: string, count: number, timeoutMs = 30_000): Promise<CapturedMessage[]> {
  const about = () =>
    env.smtp.messages.filter(
      (m) => (m.parsed.subject ?? '').includes(`[${ticket}]`) && m.envelope.to.includes('jane@customer.example'),
    );
  const deadline = Date.now() + timeoutMs;
  while (about().length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  expect(about().map((m) => m.parsed.subject)).toHaveLength(count);
  return about();
}

beforeAll(async () => {
  env = await startTicketdEnv();
  const port = await freePort();
  base = `http://127.0.0.1:${port}/api/v1`;
  env.writeConfig((c) => config(c, port, true));
  const taken = JSON.parse(
    await cliOk(
      ['ingest', '--mailbox', 'support', '--json'],
      customerMail({ subject: 'Projector dead', messageId: 'api-1@customer.example', body: 'Serial 4711.' }),
    ),
  );
  ref = taken[0].ref;
  for (const [name, scope] of [
    ['dashboard', 'read'],
    ['crm', 'write'],
    ['old', 'write'],
  ] as const) {
    const out = await cliOk(['tokens', 'create', '--name', name, '--scope', scope]);
    tokens[name] = out.trim();
  }
  daemon = env.spawnDaemon();
  await daemon.waitForLog((e) => e.code === 'DAEMON_STARTED');
  // The acknowledgement is out, so its stored text (the status link redacted once sent) no longer changes under a comparison.
  await env.smtp.waitFor(1);
}, 120_000);

afterAll(async () => {
  daemon?.child.kill('SIGTERM');
  await daemon?.exited;
  await env?.stop();
});

describe('the JSON API', () => {
  it('prints a token once and keeps only its hash', async () => {
    expect(tokens.crm).toMatch(/^tkd_[A-Za-z0-9_-]{43}$/);
    const list = JSON.parse(await cliOk(['tokens', 'list', '--json']));
    expect(list.map((t: any) => [t.name, t.scope])).toEqual([
      ['dashboard', 'read'],
      ['crm', 'write'],
      ['old', 'write'],
    ]);
    expect(JSON.stringify(list)).not.toContain('tkd_');
    // In the database: the SHA-256 of each token, and the token itself nowhere, not even in the write-ahead log.
    const db = new BetterSqlite3(env.database, { readonly: true });
    try {
      const rows = db.prepare('SELECT name, token_hash AS hash FROM api_tokens ORDER BY id').all() as {
        name: string;
        hash: string;
      }[];
      expect(rows).toEqual(
        ['dashboard', 'crm', 'old'].map((name) => ({ name, hash: createHash('sha256').update(tokens[name]!).digest('hex') })),
      );
    } finally {
      db.close();
    }
    const files = [env.database, `${env.database}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f));
    for (const token of Object.values(tokens)) {
      const secret = token.slice('tkd_'.length);
      for (const bytes of files) expect(bytes.includes(secret)).toBe(false);
    }
    const again = await env.cli(['tokens', 'create', '--name', 'crm', '--scope', 'read']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('TICKETD_API_TOKEN_NAME_TAKEN');
  });

  it('refuses a request without a token, with an unknown one, and with a revoked one', { timeout: 60_000 }, async () => {
    const none = await call('GET', '/tickets');
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe('TICKETD_API_UNAUTHORIZED');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);

    const basic = await call('GET', '/tickets', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` });
    expect(basic.status).toBe(401);
    // The right shape, but no such token.
    const unknown = await call('GET', '/tickets', { token: `tkd_${'A'.repeat(43)}` });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.code).toBe('TICKETD_API_UNAUTHORIZED');

    expect((await call('GET', '/tickets', { token: tokens.old })).status).toBe(200);
    await cliOk(['tokens', 'revoke', 'old']);
    const revoked = await call('GET', '/tickets', { token: tokens.old });
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.code).toBe('TICKETD_API_UNAUTHORIZED');
    const twice = await env.cli(['tokens', 'revoke', 'old']);
    expect(twice.code).toBe(64);
  });

  it('reads tickets with a read token: a list by queue, and one ticket as tickets show --json prints it', async () => {
    const all = await call('GET', '/tickets', { token: tokens.dashboard });
    expect(all.status).toBe(200);
    expect(all.body.tickets).toEqual([expect.objectContaining({ ref, queue: 'Hardware', status: 'open' })]);
    expect((await call('GET', '/tickets?queue=hardware&status=open', { token: tokens.dashboard })).body.tickets).toHaveLength(1);
    expect((await call('GET', '/tickets?queue=Warehouse', { token: tokens.dashboard })).body.tickets).toEqual([]);
    // The same filter at the command line.
    expect(JSON.parse(await cliOk(['tickets', 'list', '--queue', 'HARDWARE', '--json'])).map((t: any) => t.ref)).toEqual([ref]);
    expect(JSON.parse(await cliOk(['tickets', 'list', '--queue', 'warehouse', '--json']))).toEqual([]);
    const badStatus = await call('GET', '/tickets?status=sleeping', { token: tokens.dashboard });
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.error.code).toBe('TICKETD_API_INVALID_REQUEST');

    const one = await call('GET', `/tickets/${ref}`, { token: tokens.dashboard });
    expect(one.status).toBe(200);
    expect(one.body).toEqual(await show(ref));
    const missing = await call('GET', '/tickets/ACME-000000', { token: tokens.dashboard });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('TICKETD_TICKET_NOT_FOUND');
  });

  it('refuses a write with a read token and changes nothing', async () => {
    const before = await show(ref);
    const r = await call('POST', `/tickets/${ref}/notes`, { token: tokens.dashboard, body: { text: 'from the dashboard' } });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('TICKETD_API_FORBIDDEN');
    expect(await show(ref)).toEqual(before);
  });

  it('acts with a write token under the command line rules, and the action shows in tickets show --json', async () => {
    const blank = await call('POST', `/tickets/${ref}/notes`, { token: tokens.crm, body: { text: '  \n' } });
    expect(blank.status).toBe(400);
    expect(blank.body.error.code).toBe('TICKETD_API_INVALID_REQUEST');

    const note = await call('POST', `/tickets/${ref}/notes`, {
      token: tokens.crm,
      body: { text: 'Customer called: 3rd floor.' },
    });
    expect(note.status).toBe(201);
    // Far beyond the status page's 1 KiB limit on bodies: a pasted log is a fair note.
    const long = await call('POST', `/tickets/${ref}/notes`, {
      token: tokens.crm,
      body: { text: 'x'.repeat(20_000), by: 'sam' },
    });
    expect(long.status).toBe(201);
    expect(long.body.events).toContainEqual(
      expect.objectContaining({ type: 'note', detail: { text: 'x'.repeat(20_000), by: 'sam' } }),
    );

    const noNote = await call('POST', `/tickets/${ref}/handoff`, { token: tokens.crm, body: { queue: 'warehouse' } });
    expect(noNote.status).toBe(422);
    expect(noNote.body.error.code).toBe('TICKETD_HANDOFF_NOTE_REQUIRED');
    const nowhere = await call('POST', `/tickets/${ref}/handoff`, { token: tokens.crm, body: { note: 'to whom?' } });
    expect(nowhere.status).toBe(400);
    const unknownQueue = await call('POST', `/tickets/${ref}/handoff`, {
      token: tokens.crm,
      body: { queue: 'Kitchen', note: 'socket 77-A' },
    });
    expect(unknownQueue.status).toBe(422);
    expect(unknownQueue.body.error.code).toBe('TICKETD_QUEUE_UNKNOWN');
    const notStaff = await call('POST', `/tickets/${ref}/assign`, {
      token: tokens.crm,
      body: { owner: 'eve@elsewhere.example' },
    });
    expect(notStaff.status).toBe(422);
    expect(notStaff.body.error.code).toBe('TICKETD_NOT_STAFF');

    const handoff = await call('POST', `/tickets/${ref}/handoff`, {
      token: tokens.crm,
      body: { queue: 'warehouse', note: 'Needs socket 77-A.' },
    });
    expect(handoff.status).toBe(200);
    const shown = await show(ref);
    // The notice to the warehouse may go out in between, which changes its stored text: compare what the handoff changed.
    expect(handoff.body.handoffs).toEqual(shown.handoffs);
    expect(shown.queue).toBe('Warehouse');
    expect(shown.handoffs).toEqual([
      expect.objectContaining({ from: 'Hardware', to: 'Warehouse', by: 'api:crm', note: 'Needs socket 77-A.' }),
    ]);
    expect(shown.events).toContainEqual(
      expect.objectContaining({ type: 'note', public: false, detail: { text: 'Customer called: 3rd floor.', by: 'api:crm' } }),
    );

    const resolved = await call('POST', `/tickets/${ref}/resolve`, { token: tokens.crm, body: { text: 'The socket is in.' } });
    expect(resolved.status).toBe(200);
    expect((await show(ref)).status).toBe('resolved');
    const twice = await call('POST', `/tickets/${ref}/resolve`, { token: tokens.crm, body: {} });
    expect(twice.status).toBe(409);
    expect(twice.body.error.code).toBe('TICKETD_STATUS_UNCHANGED');
    const replies = (await show(ref)).messages.filter((m: any) => m.kind === 'agent-reply');
    expect(replies).toHaveLength(1);
    await daemon.waitForLog((e) => e.code === 'API_ACTION' && e.action === 'resolve' && e.tokenName === 'crm');
  });

  it('resolves with an empty body: the customer gets one resolution mail with a link per score, threaded', {
    timeout: 60_000,
  }, async () => {
    const taken = JSON.parse(
      await cliOk(
        ['ingest', '--mailbox', 'support', '--json'],
        customerMail({ subject: 'Kettle cold', messageId: 'api-rate@customer.example', body: 'It stays cold.' }),
      ),
    );
    const kettle: string = taken[0].ref;
    const resolved = await call('POST', `/tickets/${kettle}/resolve`, { token: tokens.crm, body: {} });
    expect(resolved.status).toBe(200);
    expect(resolved.body.status).toBe('resolved');
    const twice = await call('POST', `/tickets/${kettle}/resolve`, { token: tokens.crm, body: {} });
    expect(twice.status).toBe(409);

    const mine = await customerMailsAbout(kettle, 2);
    const resolution = mine.find((m) => m.parsed.headers.get('auto-submitted') === 'auto-generated')!;
    const ack = mine.find((m) => m.parsed.headers.get('auto-submitted') === 'auto-replied')!;
    expect(resolution.envelope.to).toEqual(['jane@customer.example']);
    expect(resolution.parsed.inReplyTo).toBe(ack.parsed.messageId);
    expect(String(resolution.parsed.references)).toContain('<api-rate@customer.example>');
    expect(ratingLinks(resolution).textScores).toEqual([1, 2, 3, 4, 5]);
    expect(ratingLinks(resolution).htmlScores).toEqual([1, 2, 3, 4, 5]);
    // The refused second resolve queued nothing.
    expect((await show(kettle)).messages.map((m: any) => m.kind)).toEqual(['request', 'ack', 'new-ticket-notice', 'resolved']);
  });

  it('sends a reply to the requester and assigns the ticket to a person, as the command line would', async () => {
    const other = JSON.parse(
      await cliOk(
        ['ingest', '--mailbox', 'support', '--json'],
        customerMail({ subject: 'Kettle cold', messageId: 'api-2@customer.example', body: 'It stopped heating.' }),
      ),
    )[0].ref;
    env.smtp.clear();
    const reply = await call('POST', `/tickets/${other}/replies`, {
      token: tokens.crm,
      body: { text: 'A new kettle ships today.' },
    });
    expect(reply.status).toBe(201);
    // The daemon's outbox sends it, beside the acknowledgement and the queue's notice.
    let sent: CapturedMessage | undefined;
    for (const end = Date.now() + 30_000; sent === undefined && Date.now() < end; ) {
      sent = env.smtp.messages.find((m) => m.parsed.text?.includes('A new kettle ships today.'));
      if (sent === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(sent?.envelope.to).toEqual(['jane@customer.example']);
    expect(sent!.parsed.subject).toContain(`[${other}]`);
    expect(String(sent!.parsed.references)).toContain('<api-2@customer.example>');
    const shown = await show(other);
    // recorded as written by the token's caller, as notes are
    expect(shown.events.filter((e: any) => e.type === 'reply')).toEqual([
      expect.objectContaining({ public: true, detail: { by: 'api:crm' } }),
    ]);
    expect(shown.messages.filter((m: any) => m.kind === 'agent-reply').map((m: any) => m.text)).toEqual([
      expect.stringContaining('A new kettle ships today.'),
    ]);

    // Taking an unowned ticket needs no note; taking it from its owner is a handoff and mails the new owner.
    const take = await call('POST', `/tickets/${other}/assign`, { token: tokens.crm, body: { owner: 'sam@example.com' } });
    expect(take.status).toBe(200);
    expect(take.body).toMatchObject({ owner: 'sam@example.com', handoffs: [] });
    env.smtp.clear();
    const pass = await call('POST', `/tickets/${other}/assign`, {
      token: tokens.crm,
      body: { owner: 'tom@example.com', note: 'Heating element, serial 88.', by: 'sam@example.com' },
    });
    expect(pass.status).toBe(200);
    expect(pass.body.owner).toBe('tom@example.com');
    expect(pass.body.handoffs).toEqual([
      expect.objectContaining({
        from: 'sam@example.com',
        to: 'tom@example.com',
        by: 'sam@example.com',
        note: 'Heating element, serial 88.',
      }),
    ]);
    const [toTom] = await env.smtp.waitFor(1, 30_000);
    expect(toTom!.envelope.to).toEqual(['tom@example.com']);
    expect(toTom!.parsed.text).toContain('Heating element, serial 88.');
    expect(toTom!.parsed.text).toContain('It stopped heating.');
    expect((await show(other)).owner).toBe('tom@example.com');
  });

  it('answers 404 for a route it does not have, and nothing at all once a reload turns it off', { timeout: 60_000 }, async () => {
    const nothing = await call('GET', '/nothing', { token: tokens.crm });
    expect(nothing.status).toBe(404);
    expect(nothing.body.error.code).toBe('TICKETD_API_NOT_FOUND');

    const port = Number(new URL(base).port);
    env.writeConfig((c) => config(c, port, false));
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog((e) => e.code === 'CONFIG_RELOADED');
    const off = await call('GET', '/tickets', { token: tokens.crm });
    expect(off.status).toBe(404);
    expect(off.body.error.code).toBe('TICKETD_API_DISABLED');
  });
});

// Queues, routing and handoffs end to end: mail routed by the configured
// rules, `rules test` explaining a match, a handoff that needs a note and
// mails the receiving queue the whole story, threaded per ticket, and a
// database from before queues migrating its teams.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/store/migrate.js';
import { customerMail, startTicketdEnv, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;

function withQueues(c: Record<string, any>) {
  c.mailboxes[0].defaultQueue = 'Front desk';
  c.queues = [
    { name: 'Front desk', staff: ['sam@example.com'] },
    { name: 'Hardware', staff: ['tom@example.com'], notify: 'hardware-team@example.com' },
    { name: 'Warehouse', staff: ['wanda@example.com'] },
  ];
  c.routing = [
    {
      name: 'machines',
      match: { subject: 'projector|printer', body: 'serial' },
      set: { queue: 'hardware', priority: 'high', tags: ['hw'] },
    },
    { name: 'vip', match: { fromDomain: '^bigcorp\\.example$' }, set: { priority: 'urgent' } },
  ];
}

beforeAll(async () => {
  env = await startTicketdEnv();
  env.writeConfig(withQueues);
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function ingest(mail: string): Promise<string> {
  const r = await env.cli(['ingest', '--mailbox', 'support', '--json'], { input: mail });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout)[0].ref;
}

describe('queues and routing', () => {
  let ref = '';

  it('routes a new ticket by the first matching rule, and the rest to the mailbox default queue', async () => {
    ref = await ingest(
      customerMail({ subject: 'Projector broken', messageId: 'q-1@customer.example', body: 'The lamp is dead. Serial 4711.' }),
    );
    expect(await env.showTicket(ref)).toMatchObject({
      queue: 'Hardware',
      team: 'Hardware',
      owner: null,
      priority: 'high',
      tags: ['hw'],
      handoffs: [],
    });
    const other = await ingest(
      customerMail({ subject: 'Invoice question', messageId: 'q-2@customer.example', from: 'boss@bigcorp.example' }),
    );
    expect(await env.showTicket(other)).toMatchObject({ queue: 'Front desk', priority: 'urgent', tags: [] });
    const list = JSON.parse((await env.cli(['tickets', 'list', '--json'])).stdout);
    // `queue` as everywhere else, and `team` beside it for the one release it is kept.
    expect(list.map((t: any) => t.queue)).toEqual(['Hardware', 'Front desk']);
    expect(list.map((t: any) => t.team)).toEqual(['Hardware', 'Front desk']);
  }, 120_000);

  it('rules test shows which rule matches and why, without touching the database', async () => {
    const file = join(env.dir, 'probe.eml');
    writeFileSync(
      file,
      customerMail({ subject: 'Printer jams', messageId: 'probe@customer.example', body: 'No serial at hand.' }),
    );
    const human = await env.cli(['rules', 'test', file]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^rule "machines" matched \(mailbox support\): queue Hardware, priority high, tags hw/);
    expect(human.stdout).toMatch(/yes subject \/projector\|printer\/i found "Printer"/);
    expect(human.stdout).toMatch(/yes body \/serial\/i found "serial"/);

    writeFileSync(file, customerMail({ subject: 'Printer jams', messageId: 'probe@customer.example', body: 'Nothing else.' }));
    const json = JSON.parse((await env.cli(['rules', 'test', file, '--json'])).stdout);
    expect(json).toMatchObject({ mailbox: 'support', rule: null, queue: 'Front desk' });
    expect(json.trace[0].conditions[1]).toMatchObject({ field: 'body', matched: false });
    const list = JSON.parse((await env.cli(['tickets', 'list', '--json'])).stdout);
    expect(list).toHaveLength(2);
  }, 120_000);

  it('refuses a handoff without a note, or to a queue that does not exist', async () => {
    const noNote = await env.cli(['tickets', 'handoff', ref, '--queue', 'Warehouse'], { input: '' });
    expect(noNote.code).toBe(64);
    const unknown = await env.cli(['tickets', 'handoff', ref, '--queue', 'Nowhere', '--note', 'x']);
    expect(unknown.code).toBe(64);
    expect((await env.showTicket(ref)).handoffs).toEqual([]);
  }, 120_000);

  it('mails the receiving queue the whole story: request, public replies, internal notes and the handoff note', async () => {
    const td = await env.open();
    try {
      expect((await env.cli(['tickets', 'reply', ref, '--message', 'We are sending a technician.'])).code).toBe(0);
      expect((await env.cli(['tickets', 'note', ref, '--by', 'sam', '--message', 'Customer is on the 3rd floor.'])).code).toBe(0);
      const first = await env.cli([
        'tickets',
        'handoff',
        ref,
        '--queue',
        'warehouse',
        '--by',
        'tom@example.com',
        '--note',
        'Needs a spare lamp, part 77-A.',
      ]);
      expect(first.code, first.stderr).toBe(0);
      td.clock.set(new Date());
      env.smtp.clear();
      await td.outbox.runOnce();
      const mails = await env.smtp.waitFor(2);
      const notice = mails.find((m) => m.envelope.to.includes('wanda@example.com'))!;
      expect(notice, mails.map((m) => m.envelope.to).join(' ')).toBeDefined();
      const text = notice.parsed.text!;
      for (const part of [
        'The lamp is dead. Serial 4711.',
        'We are sending a technician.',
        'Customer is on the 3rd floor.',
        'Needs a spare lamp, part 77-A.',
      ]) {
        expect(text).toContain(part);
      }
      expect(notice.parsed.subject).toContain(`[${ref}]`);
      expect(notice.parsed.from?.value[0]?.address).toBe('support@example.com');
      expect(notice.parsed.headers.get('auto-submitted')).toBe('auto-generated');

      // The second handoff's notice continues the same staff thread.
      const second = await env.cli([
        'tickets',
        'handoff',
        ref,
        '--to',
        'tom@example.com',
        '--by',
        'wanda@example.com',
        '--note',
        'Lamp 77-A is on its way to you.',
      ]);
      expect(second.code, second.stderr).toBe(0);
      td.clock.set(new Date());
      env.smtp.clear();
      await td.outbox.runOnce();
      const [next] = await env.smtp.waitFor(1);
      expect(next!.envelope.to).toEqual(['tom@example.com']);
      expect(next!.parsed.inReplyTo).toBe(notice.parsed.messageId);
      expect(next!.parsed.text).toContain('Lamp 77-A is on its way to you.');
      // The customer got nothing of it.
      expect(env.smtp.messages.some((m) => m.envelope.to.includes('jane@customer.example'))).toBe(false);
    } finally {
      await td.close();
    }

    const shown = await env.showTicket(ref);
    expect(shown).toMatchObject({ queue: 'Warehouse', owner: 'tom@example.com' });
    expect(shown.handoffs).toEqual([
      {
        from: 'Hardware',
        to: 'Warehouse',
        by: 'tom@example.com',
        note: 'Needs a spare lamp, part 77-A.',
        at: expect.any(String),
        fromQueue: 'Hardware',
        toQueue: 'Warehouse',
        fromOwner: null,
        toOwner: null,
      },
      {
        from: 'Warehouse',
        to: 'tom@example.com',
        by: 'wanda@example.com',
        note: 'Lamp 77-A is on its way to you.',
        at: expect.any(String),
        fromQueue: 'Warehouse',
        toQueue: 'Warehouse',
        fromOwner: null,
        toOwner: 'tom@example.com',
      },
    ]);
    // The customer's page learns the team's name and nothing else.
    const publicHandoffs = shown.events.filter((e: any) => e.public && e.type === 'handoff');
    expect(publicHandoffs.map((e: any) => e.detail)).toEqual([{ team: 'Warehouse' }]);
    expect(JSON.stringify(shown.events.filter((e: any) => e.public))).not.toContain('77-A');
  }, 120_000);

  it('takes an unowned ticket without a note, but taking it from its owner is a handoff', async () => {
    const other = JSON.parse((await env.cli(['tickets', 'list', '--json'])).stdout)[1].ref;
    const take = await env.cli(['tickets', 'assign', other, 'sam@example.com']);
    expect(take.code, take.stderr).toBe(0);
    expect(await env.showTicket(other)).toMatchObject({ owner: 'sam@example.com', handoffs: [] });
    const steal = await env.cli(['tickets', 'assign', other, 'tom@example.com']);
    expect(steal.code).toBe(1);
    expect(steal.stderr).toMatch(/needs a note/);
    const again = await env.cli(['tickets', 'assign', other, 'sam@example.com']);
    expect(again.code).toBe(1);
    const stranger = await env.cli(['tickets', 'assign', other, 'eve@evil.example']);
    expect(stranger.code).toBe(64);
  }, 120_000);
});

describe('a database from before queues', () => {
  it('migrates each ticket team to its queue and each recorded handoff to the handoff history', async () => {
    const path = join(env.dir, 'old.sqlite');
    const db = new BetterSqlite3(path);
    for (const m of loadMigrations().filter((m) => m.version <= 8)) {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }
    db.prepare(
      `INSERT INTO tickets (id, ref, mailbox, status, subject, requester, reply_to, created_at, updated_at, team)
       VALUES (1, 'ACME-X7Z123', 'support', 'open', 'Old', 'old@customer.example', 'old@customer.example', 1000, 1000, 'Hardware')`,
    ).run();
    db.prepare(
      `INSERT INTO events (ticket_id, type, public, detail, created_at) VALUES (1, 'handoff', 1, '{"team":"Hardware"}', 2000)`,
    ).run();
    db.prepare(
      `INSERT INTO events (ticket_id, type, public, detail, created_at) VALUES (1, 'note', 0, '{"team":"Hardware","text":"old note"}', 2000)`,
    ).run();
    db.close();
    const cfg = join(env.dir, 'old.json');
    const base = JSON.parse(readFileSync(env.configPath, 'utf8'));
    writeFileSync(cfg, JSON.stringify({ ...base, database: path }));
    const m = await env.cli(['migrate'], { config: cfg });
    expect(m.code, m.stderr).toBe(0);
    const r = await env.cli(['tickets', 'show', 'ACME-X7Z123', '--json'], { config: cfg });
    expect(r.code, r.stderr).toBe(0);
    const shown = JSON.parse(r.stdout);
    expect(shown).toMatchObject({ queue: 'Hardware', team: 'Hardware', owner: null });
    expect(shown.handoffs).toEqual([expect.objectContaining({ to: 'Hardware', by: null, at: new Date(2000).toISOString() })]);
  }, 120_000);
});

// Staff working a ticket from the command line: reading the whole
// conversation, writing replies and notes from a file or a pipe, status
// changes that keep their word, dropping quarantined junk, and tables that
// never cut a character in half.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ratingLinks } from '../harness/rating-links.js';
import { customerMail, startTicketdEnv, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

async function ingest(mail: string): Promise<{ ref: string; outcome: string; quarantineId: number | null }> {
  const r = await env.cli(['ingest', '--mailbox', 'support', '--json'], { input: mail });
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout)[0];
}

function db() {
  return new BetterSqlite3(join(env.dir, 'data', 'ticketd.sqlite'), { readonly: true });
}

describe('staff at the command line', () => {
  let ref = '';

  it('reads a reply from --file and from stdin, and refuses an empty one', async () => {
    ({ ref } = await ingest(
      customerMail({ subject: 'Projector dead', messageId: 'staff-cli-1@customer.example', body: 'The lamp does not come on.' }),
    ));
    const file = join(env.dir, 'reply.txt');
    writeFileSync(file, 'Line one of the answer.\n\nLine three, after a blank line.\n');
    const fromFile = await env.cli(['tickets', 'reply', ref, '--file', file]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const fromStdin = await env.cli(['tickets', 'reply', ref], { input: 'Sent through a pipe.\n' });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);

    const empty = await env.cli(['tickets', 'reply', ref], { input: '  \n\n' });
    expect(empty.code).toBe(64);
    expect(empty.stderr).toMatch(/empty/);
    const both = await env.cli(['tickets', 'reply', ref, '--message', 'a', '--file', file]);
    expect(both.code).toBe(64);

    const replies = (await env.showTicket(ref)).messages.filter((m: any) => m.kind === 'agent-reply');
    expect(replies.map((m: any) => m.text)).toEqual([
      expect.stringContaining('Line one of the answer.\n\nLine three, after a blank line.'),
      expect.stringContaining('Sent through a pipe.'),
    ]);
  }, 120_000);

  it('adds internal notes from --message, --file or stdin', async () => {
    const r = await env.cli(['tickets', 'note', ref, '--by', 'sam'], {
      input: 'Customer called: serial 4711.\nWarranty until May.',
    });
    expect(r.code, r.stderr).toBe(0);
    const empty = await env.cli(['tickets', 'note', ref], { input: '' });
    expect(empty.code).toBe(64);
  }, 120_000);

  it('shows the conversation with its texts, newest last, internal notes marked', async () => {
    const human = await env.cli(['tickets', 'show', ref]);
    expect(human.code, human.stderr).toBe(0);
    const text = human.stdout;
    const at = (s: string) => {
      const i = text.indexOf(s);
      expect(i, `${s} in:\n${text}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    expect(at('The lamp does not come on.')).toBeLessThan(at('Line one of the answer.'));
    expect(at('Line one of the answer.')).toBeLessThan(at('Sent through a pipe.'));
    expect(at('Sent through a pipe.')).toBeLessThan(at('Customer called: serial 4711.\nWarranty until May.'));
    const noteHead = text.slice(0, at('Customer called')).trimEnd().split('\n').at(-1)!;
    expect(noteHead).toMatch(/note +internal +by=sam/);

    const json = await env.showTicket(ref);
    expect(json.messages[0]).toMatchObject({ kind: 'request', text: expect.stringContaining('The lamp does not come on.') });
    expect(json.events).toContainEqual({
      type: 'note',
      public: false,
      at: expect.any(String),
      detail: { text: 'Customer called: serial 4711.\nWarranty until May.', by: 'sam' },
    });
    expect(json.events.map((e: any) => e.type)).toContain('received');
  }, 120_000);

  it('refuses a change to the status the ticket already has, and keeps the on-hold reason', async () => {
    const hold = await env.cli(['tickets', 'status', ref, 'on-hold', '--reason', 'waiting for a spare part']);
    expect(hold.code, hold.stderr).toBe(0);
    const events = () => (db().prepare('SELECT count(*) AS n FROM events WHERE type = ?').get('status') as { n: number }).n;
    const before = events();

    const again = await env.cli(['tickets', 'status', ref, 'on-hold']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already on-hold/);
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('on-hold');
    const row = db().prepare('SELECT on_hold_reason AS r FROM tickets WHERE ref = ?').get(ref) as { r: string };
    expect(row.r).toBe('waiting for a spare part');
    expect(events()).toBe(before);

    const sameReason = await env.cli(['tickets', 'status', ref, 'on-hold', '--reason', 'waiting for a spare part']);
    expect(sameReason.code).toBe(1);
    const newReason = await env.cli(['tickets', 'status', ref, 'on-hold', '--reason', 'the part is with the courier']);
    expect(newReason.code, newReason.stderr).toBe(0);
    expect(events()).toBe(before + 1);

    const open = await env.cli(['tickets', 'status', ref, 'open']);
    expect(open.code, open.stderr).toBe(0);
    const openAgain = await env.cli(['tickets', 'status', ref, 'open']);
    expect(openAgain.code).toBe(1);
    const reasonElsewhere = await env.cli(['tickets', 'status', ref, 'pending', '--reason', 'x']);
    expect(reasonElsewhere.code).toBe(64);
  }, 120_000);

  it('resolves with a last reply, and refuses to resolve twice before sending anything', async () => {
    const replies = async () => (await env.showTicket(ref)).messages.filter((m: any) => m.kind === 'agent-reply').length;
    const before = await replies();
    const r = await env.cli(['tickets', 'resolve', ref, '--message', 'The new lamp is in. Closing this.']);
    expect(r.code, r.stderr).toBe(0);
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('resolved');
    expect(shown.messages.at(-1)).toMatchObject({ kind: 'agent-reply', text: expect.stringContaining('The new lamp is in.') });
    const again = await env.cli(['tickets', 'resolve', ref, '--message', 'Again?']);
    expect(again.code).toBe(1);
    expect(await replies()).toBe(before + 1);
  }, 120_000);

  it('discards a junk quarantine entry and removes its stored bytes', async () => {
    env.writeConfig((c) => (c.limits = { maxMessageBytes: 2_000 }));
    try {
      const q = await ingest(
        customerMail({ subject: 'BUY NOW', messageId: 'junk-1@spam.example', body: `JUNKMARK ${'z'.repeat(5_000)}` }),
      );
      expect(q.outcome).toBe('quarantined');
      const id = q.quarantineId!;
      const sha = (db().prepare('SELECT raw_sha256 AS sha FROM quarantine WHERE id = ?').get(id) as { sha: string }).sha;

      const r = await env.cli(['quarantine', 'discard', String(id)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/discarded/);
      expect(db().prepare('SELECT count(*) AS n FROM raw_messages WHERE sha256 = ?').get(sha)).toEqual({ n: 0 });

      const open = JSON.parse((await env.cli(['quarantine', 'list', '--json'])).stdout);
      expect(open.map((e: any) => e.id)).not.toContain(id);
      const all = JSON.parse((await env.cli(['quarantine', 'list', '--all', '--json'])).stdout);
      expect(all.find((e: any) => e.id === id)).toMatchObject({ releaseOutcome: 'discarded', releasedAt: expect.any(String) });

      expect((await env.cli(['quarantine', 'show', String(id), '--raw'])).code).toBe(64);
      expect((await env.cli(['quarantine', 'retry', String(id)])).code).toBe(64);
      expect((await env.cli(['quarantine', 'discard', String(id)])).code).toBe(1);
      expect((await env.cli(['quarantine', 'discard', '99999'])).code).toBe(64);
    } finally {
      env.writeConfig();
    }
  }, 120_000);

  it('cuts table cells between characters, never inside an emoji', async () => {
    const subject = `x${'🔥'.repeat(58)}👨‍👩‍👧${'🔥'.repeat(10)}`;
    const word = `=?UTF-8?B?${Buffer.from(subject).toString('base64')}?=`;
    await ingest(customerMail({ subject: word, messageId: 'emoji-1@customer.example' }));
    const list = await env.cli(['tickets', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toContain('\uFFFD');
    const line = list.stdout.split('\n').find((l) => l.includes('x🔥'))!;
    // 60 characters: the x, 58 flames and the family (five code points joined) whole.
    expect(line.slice(line.indexOf('x🔥')).trimEnd()).toBe(`x${'🔥'.repeat(58)}👨‍👩‍👧`);
  }, 120_000);

  it('resolves without a reply: the customer still gets one resolution mail with a link per score, threaded', async () => {
    const { ref: quiet } = await ingest(
      customerMail({ subject: 'Scanner offline', messageId: 'staff-cli-rate@customer.example', body: 'No scans since Monday.' }),
    );
    const r = await env.cli(['tickets', 'resolve', quiet]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('resolution mail queued for jane@customer.example');
    const again = await env.cli(['tickets', 'resolve', quiet]);
    expect(again.code).toBe(1);

    // Send what the outbox holds, as the daemon would.
    const td = await env.open();
    try {
      td.clock.set(new Date());
      await td.cycle();
    } finally {
      await td.close();
    }
    const mine = env.smtp.messages.filter((m) => (m.parsed.subject ?? '').includes(`[${quiet}]`));
    expect(mine.map((m) => m.envelope.to)).toEqual([['jane@customer.example'], ['jane@customer.example']]);
    // The outbox sends them side by side, so they may arrive in either order.
    const resolution = mine.find((m) => m.parsed.headers.get('auto-submitted') === 'auto-generated')!;
    const ack = mine.find((m) => m.parsed.headers.get('auto-submitted') === 'auto-replied')!;
    expect(resolution.parsed.inReplyTo).toBe(ack.parsed.messageId);
    expect(String(resolution.parsed.references)).toContain('<staff-cli-rate@customer.example>');
    expect(ratingLinks(resolution).textScores).toEqual([1, 2, 3, 4, 5]);
    expect(ratingLinks(resolution).htmlScores).toEqual([1, 2, 3, 4, 5]);
    const shown = await env.showTicket(quiet);
    expect(shown.status).toBe('resolved');
    expect(shown.messages.map((m: any) => m.kind)).toEqual(['request', 'ack', 'resolved']);
  }, 120_000);

  it('sends the same resolution mail when tickets status sets resolved', async () => {
    const { ref: bystatus } = await ingest(
      customerMail({ subject: 'Printer jams', messageId: 'staff-cli-rate-2@customer.example', body: 'Jams on every page.' }),
    );
    const r = await env.cli(['tickets', 'status', bystatus, 'resolved']);
    expect(r.code, r.stderr).toBe(0);
    expect((await env.cli(['tickets', 'status', bystatus, 'resolved'])).code).toBe(1);
    const shown = await env.showTicket(bystatus);
    expect(shown.status).toBe('resolved');
    expect(shown.messages.map((m: any) => m.kind)).toEqual(['request', 'ack', 'resolved']);
  }, 60_000);
});

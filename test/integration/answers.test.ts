// The answers library against real Dovecot and a capturing SMTP server:
// `#answer NAME` in a staff mail and `--answer NAME` on the command line put
// the vetted text (in the ticket's language) into the reply the customer
// receives, each use is an `answer_used` event, and an unknown name sends
// nothing.

import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ratingLinks } from '../harness/rating-links.js';
import type { CapturedMessage } from '../harness/smtp-capture.js';
import { customerMail, staffReply, startTicketdEnv, SUPPORT, type InProcess, type TicketdEnv } from '../harness/ticketd-env.js';

const WARRANTY_EN = 'Our warranty covers parts and labour for two years from the date of purchase.';
const WARRANTY_DE = 'Unsere Garantie deckt Teile und Arbeitszeit zwei Jahre ab Kaufdatum.';

/** The front desk's one staff member, who answers its notices. */
const SAM = 'Sam <sam@example.com>';

let env: TicketdEnv;
let td: InProcess;

beforeAll(async () => {
  env = await startTicketdEnv();
  env.writeConfig((c) => {
    c.mailboxes[0].defaultQueue = 'Front desk';
    c.queues = [{ name: 'Front desk', staff: ['sam@example.com'] }];
  });
  td = await env.open();
}, 60_000);
afterAll(async () => {
  await td?.close();
  await env?.stop();
});

async function cycle(): Promise<void> {
  td.clock.set(new Date());
  await td.cycle();
}

/** A new ticket from a customer; returns its reference and the notice its queue got. */
async function openTicket(o: {
  messageId: string;
  from: string;
  headers?: Record<string, string>;
}): Promise<{ ref: string; notice: CapturedMessage }> {
  env.smtp.clear();
  await env.dovecot.appendMessage(
    SUPPORT,
    'INBOX',
    customerMail({ subject: 'Broken kettle', body: 'It stopped heating.', ...o }),
  );
  await cycle();
  const mails = await env.smtp.waitFor(2);
  const notice = mails.find((m) => m.envelope.to[0] === 'sam@example.com')!;
  return { ref: /\[(ACME-\w{6})\]/.exec(notice.parsed.subject!)![1]!, notice };
}

const answerEvents = (shown: any) => shown.events.filter((e: any) => e.type === 'answer_used');

describe('answers by email', () => {
  it('sends the staff text with the answer below it, records the use, and quotes nothing of the notice', async () => {
    const { ref, notice } = await openTicket({ messageId: 'ans-1@customer.example', from: 'Jane <jane@customer.example>' });
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: SAM,
        messageId: 'sam-ans-1@example.com',
        body: '#answer warranty\r\nHello Jane, good news:',
      }),
    );
    await cycle();
    const [reply] = await env.smtp.waitFor(1);
    expect(reply!.envelope.to).toEqual(['jane@customer.example']);
    const text = reply!.parsed.text ?? '';
    expect(text).toContain('Hello Jane, good news:');
    expect(text).toContain(WARRANTY_EN);
    expect(text.indexOf('Hello Jane')).toBeLessThan(text.indexOf(WARRANTY_EN));
    expect(text).not.toContain('#answer');
    expect(reply!.raw.toString('utf8')).not.toContain('New in Front desk');
    const shown = await env.showTicket(ref);
    expect(answerEvents(shown)).toEqual([
      expect.objectContaining({
        public: false,
        detail: { name: 'warranty', lang: null, by: 'sam@example.com', via: 'mail' },
      }),
    ]);
  }, 120_000);

  it("answers in the ticket's language", async () => {
    const { ref, notice } = await openTicket({
      messageId: 'ans-2@customer.example',
      from: 'Jonas <jonas@kunde.example>',
      headers: { 'Content-Language': 'de-AT' },
    });
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: SAM,
        messageId: 'sam-ans-2@example.com',
        body: '#answer WARRANTY',
      }),
    );
    await cycle();
    const [reply] = await env.smtp.waitFor(1);
    expect(reply!.parsed.text).toContain(WARRANTY_DE);
    expect(reply!.parsed.text).not.toContain(WARRANTY_EN);
    expect(answerEvents(await env.showTicket(ref))[0].detail).toMatchObject({ name: 'warranty', lang: 'de' });
  }, 120_000);

  it('resolves with #resolve and #answer: the reply carries the answer and the link to the rating form', async () => {
    const { ref, notice } = await openTicket({ messageId: 'ans-6@customer.example', from: 'Jane <jane@customer.example>' });
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: SAM,
        messageId: 'sam-ans-6@example.com',
        body: '#resolve\r\n#answer warranty\r\nAll done.',
      }),
    );
    await cycle();
    const [reply] = await env.smtp.waitFor(1);
    const text = reply!.parsed.text ?? '';
    expect(text).toMatch(new RegExp(`^All done\\.\\n\\n${WARRANTY_EN}`));
    expect(text).toMatch(
      /How did we do\? Choose a score from 1 \(poor\) to 5 \(excellent\);\n.*\n1 {2}http:\/\/127\.0\.0\.1:8080\/t\/[\w-]{43}\?score=1#rate\n/,
    );
    expect(ratingLinks(reply!).textScores).toEqual([1, 2, 3, 4, 5]);
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('resolved');
    expect(shown.rating).toBeNull();
    expect(answerEvents(shown)).toHaveLength(1);
  }, 120_000);

  it('relays nothing for an unknown answer and records why', async () => {
    const { ref, notice } = await openTicket({ messageId: 'ans-3@customer.example', from: 'Jane <jane@customer.example>' });
    env.smtp.clear();
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      staffReply(notice, {
        from: SAM,
        messageId: 'sam-ans-3@example.com',
        body: '#answer refund-policy\r\n#resolve\r\nHere is our policy.',
      }),
    );
    await cycle();
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('open');
    expect(shown.messages.filter((m: any) => m.kind === 'agent-reply')).toHaveLength(0);
    expect(answerEvents(shown)).toEqual([]);
    const refused = shown.events.find((e: any) => e.type === 'staff-mail-refused');
    expect(refused.detail.why.join(' ')).toMatch(/no answer named "refund-policy" \(known: .*warranty/);
    await cycle();
    expect(env.smtp.messages).toHaveLength(0);
  }, 120_000);
});

describe('templates check', () => {
  it('lists the answers and refuses one that names an unknown variable, with file and line', async () => {
    const shipped = join(import.meta.dirname, '..', '..', 'templates');
    const dir = join(env.dir, 'templates');
    cpSync(shipped, dir, { recursive: true });
    const config = join(env.dir, 'config-templates.json');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(env.configPath, 'utf8')), templatesDir: dir }));
    const ok = await env.cli(['templates', 'check'], { config });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(`OK ${join(dir, 'answers', 'de', 'warranty.text.hbs')}`);
    writeFileSync(join(dir, 'answers', 'refund.text.hbs'), 'We refund {{amount}} to\n{{customerName}}.');
    const bad = await env.cli(['templates', 'check'], { config });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${join(dir, 'answers', 'refund.text.hbs')}:1: unknown variable "amount"`);
  }, 60_000);
});

describe('answers on the command line', () => {
  it('tickets reply --answer sends the text and the answer, and records the use', async () => {
    const { ref } = await openTicket({ messageId: 'ans-4@customer.example', from: 'Jane <jane@customer.example>' });
    env.smtp.clear();
    const r = await env.cli(['tickets', 'reply', ref, '--message', 'Hi Jane,', '--answer', 'warranty', '--by', 'kim']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('with answer warranty');
    await cycle();
    const [reply] = await env.smtp.waitFor(1);
    expect(reply!.envelope.to).toEqual(['jane@customer.example']);
    expect(reply!.parsed.subject).toContain(`[${ref}]`);
    expect(reply!.parsed.text).toMatch(new RegExp(`^Hi Jane,\\n\\n${WARRANTY_EN}`));
    expect(answerEvents(await env.showTicket(ref))).toEqual([
      expect.objectContaining({ detail: { name: 'warranty', lang: null, by: 'kim', via: 'cli' } }),
    ]);
  }, 120_000);

  it('refuses an unknown answer with its code and sends nothing', async () => {
    const { ref } = await openTicket({ messageId: 'ans-5@customer.example', from: 'Jane <jane@customer.example>' });
    env.smtp.clear();
    const r = await env.cli(['tickets', 'reply', ref, '--message', 'Hi', '--answer', 'no-such-answer']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/TICKETD_ANSWER_UNKNOWN: no answer named "no-such-answer" \(known: spare-part-delay, warranty\)/);
    const resolve = await env.cli(['tickets', 'resolve', ref, '--answer', 'nope']);
    expect(resolve.code).toBe(64);
    await cycle();
    expect(env.smtp.messages).toHaveLength(0);
    const shown = await env.showTicket(ref);
    expect(shown.status).toBe('open');
    expect(shown.messages.filter((m: any) => m.kind === 'agent-reply')).toHaveLength(0);
  }, 120_000);
});

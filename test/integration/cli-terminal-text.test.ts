// Mail decides what the CLI prints: subjects, names, headers. A terminal
// acts on control characters (ESC sequences recolour, retitle or rewrite
// the screen; BEL rings; CR overwrites the line), so none may reach it raw.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customerMail, startTicketdEnv, type TicketdEnv } from '../harness/ticketd-env.js';

let env: TicketdEnv;
const HOSTILE = 'Invoice \u001b]0;pwned\u0007\u001b[31mRED\u001b[0m\r\u009b2J done';
const word = (s: string) => `=?UTF-8?B?${Buffer.from(s).toString('base64')}?=`;
/** Every control character a terminal would act on; tab and newline are layout. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for raw control characters in the output
const RAW_CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

beforeAll(async () => {
  env = await startTicketdEnv();
}, 60_000);
afterAll(async () => {
  await env?.stop();
});

describe('terminal output of mail-derived text', () => {
  let ref = '';

  it('tickets list shows control characters escaped, not raw', async () => {
    const taken = await env.cli(['ingest', '--mailbox', 'support', '--json'], {
      input: customerMail({
        subject: word(HOSTILE),
        from: `${word('Eve \u001b[5mBLINK')} <eve@customer.example>`,
        messageId: 'esc1@customer.example',
      }),
    });
    expect(taken.code, taken.stderr).toBe(0);
    ref = JSON.parse(taken.stdout)[0].ref;
    const list = await env.cli(['tickets', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toMatch(RAW_CONTROL);
    expect(list.stdout).toContain('Invoice \\x1b]0;pwned\\x07\\x1b[31mRED');
    // --json stays valid JSON and carries the exact subject, with nothing raw either.
    const json = await env.cli(['tickets', 'list', '--json']);
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json.stdout)[0].subject).toBe(HOSTILE);
  });

  it('tickets show and quarantine show escape them too', async () => {
    const show = await env.cli(['tickets', 'show', ref]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).not.toMatch(RAW_CONTROL);
    expect(show.stdout).toContain('\\x1b[31mRED');

    env.writeConfig((c) => (c.limits = { maxMessageBytes: 2_000 }));
    const big = await env.cli(['ingest', '--mailbox', 'support', '--json'], {
      input: customerMail({
        subject: word(HOSTILE),
        messageId: 'esc2@customer.example',
        headers: { 'X-Note': 'a\u001b[2Jb' },
        body: 'x'.repeat(5_000),
      }),
    });
    const [q] = JSON.parse(big.stdout);
    expect(q.outcome).toBe('quarantined');
    const shown = await env.cli(['quarantine', 'show', String(q.quarantineId)]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).not.toMatch(RAW_CONTROL);
    expect(shown.stdout).toContain('X-Note: a\\x1b[2Jb');
  });
});

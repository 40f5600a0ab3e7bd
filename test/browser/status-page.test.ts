// The whole path a customer takes: a hostile mail lands in a real Dovecot
// mailbox, the daemon takes it and sends the acknowledgement through SMTP,
// and the link in that mail is opened in real headless Chromium.

import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeAgentReply } from '../../src/compose/compose-mail.js';
import type { Daemon } from '../../src/daemon/daemon.js';
import { startBrowserEnv, type BrowserEnv } from '../harness/browser-env.js';
import { SCREENSHOTS } from '../harness/chromium.js';
import type { DovecotServer } from '../harness/dovecot.js';
import type { SmtpCapture } from '../harness/smtp-capture.js';

const SUPPORT = 'support@example.com';

const HOSTILE_SUBJECT = '<script>window.__pwned=1</script> Printer <img src=x onerror="window.__pwned=2"> \u202Efdp.exe 🔥';
const HOSTILE_NAME = '<svg onload=window.__pwned=3> Eve';
const HOSTILE_BODY = [
  'The printer on the 3rd floor jams on every page.',
  '<script>window.__pwned=4; alert(4)</script>',
  '<a href="javascript:window.__pwned=5">click me</a>',
  '<img src=x onerror="window.__pwned=6;alert(6)">',
  '</div></li></ol><h1>FAKE HEADING</h1>',
  `Log: ${'E'.repeat(4000)}`,
  '\u202Etxt.exe',
  'Thanks! 🖨️🔥',
].join('\r\n');

function customerMail(o: { from: string; subject: string; body: string; messageId: string }): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return [
    `From: ${o.from}`,
    `To: ${SUPPORT}`,
    `Subject: =?UTF-8?B?${b64(o.subject)}?=`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${o.messageId}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    b64(o.body).replace(/.{76}/g, '$&\r\n'),
    '',
  ].join('\r\n');
}

let browser: BrowserEnv;
let dovecot: DovecotServer;
let smtp: SmtpCapture;
let daemon: Daemon;
let context: BrowserContext;
let publicUrl: string;

/** Appends a mail to the daemon's INBOX and returns the status link from the acknowledgement it triggers. */
async function linkFromAck(raw: string, ackCount: number): Promise<{ url: string; ref: string; text: string }> {
  await dovecot.appendMessage(SUPPORT, 'INBOX', raw);
  const acks = await smtp.waitFor(ackCount, 30_000);
  const ack = acks[ackCount - 1]!;
  const text = ack.parsed.text ?? '';
  const url = new RegExp(`${publicUrl}/t/[A-Za-z0-9_-]{43}`).exec(text)?.[0];
  const ref = /\[(ACME-[0-9A-Z]{6})\]/.exec(ack.parsed.subject ?? '')?.[1];
  if (!url || !ref) throw new Error(`no status link or reference in the acknowledgement:\n${text}`);
  return { url, ref, text };
}

/** Opens a page while recording every dialog (alert, confirm) a script might raise. */
async function open(
  url: string,
  viewport: { width: number; height: number },
): Promise<{ page: Page; dialogs: string[]; status: number | null; csp: string | null }> {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  const response = await page.goto(url, { waitUntil: 'load' });
  return {
    page,
    dialogs,
    status: response?.status() ?? null,
    csp: (await response?.allHeaders())?.['content-security-policy'] ?? null,
  };
}

beforeAll(async () => {
  browser = await startBrowserEnv((c) => {
    c.sla = {
      policies: [{ name: 'standard', match: { mailbox: 'support' }, firstResponse: '4h', resolution: '3d', calendar: '24x7' }],
    };
  });
  ({ daemon, context, publicUrl } = browser);
  ({ dovecot, smtp } = browser.env);
}, 120_000);

afterAll(async () => {
  await browser?.stop();
}, 60_000);

describe('status page in Chromium', () => {
  let first: { url: string; ref: string; text: string };

  it('opens from the acknowledgement and shows what a person needs, with no script from the mail running', {
    timeout: 90_000,
  }, async () => {
    first = await linkFromAck(
      customerMail({
        from: `"${HOSTILE_NAME}" <eve@customer.example>`,
        subject: HOSTILE_SUBJECT,
        body: HOSTILE_BODY,
        messageId: 'hostile-1@customer.example',
      }),
      1,
    );
    const { page, dialogs, status, csp } = await open(first.url, { width: 1280, height: 900 });
    expect(status).toBe(200);
    expect(csp).toContain("default-src 'none'");

    const main = page.locator('main');
    expect(await page.locator('h1').innerText()).toBe(HOSTILE_SUBJECT);
    expect(await page.locator('dd.ref').innerText()).toBe(first.ref);
    expect(await main.innerText()).toContain(`Reference\n${first.ref}`);
    expect(await page.locator('.status-words').innerText()).toBe('We are working on it');
    expect(await main.innerText()).toContain('Yours is the next request in line.');
    expect(await main.innerText()).toMatch(/We aim to reply by \w{3} \d{1,2}, \d{4}, \d{1,2}:\d\d\s[AP]M UTC\./);
    expect(await main.innerText()).toContain(
      `Reply to the acknowledgement email we sent you. You can also write to ${SUPPORT}; please keep [${first.ref}] in the subject`,
    );
    expect(await page.locator(`a[href^="mailto:${SUPPORT}"]`).count()).toBe(1);
    expect(await page.locator('dd.user-text').innerText()).toBe(HOSTILE_NAME);
    const body = await page.locator('.message').innerText();
    expect(body).toBe(HOSTILE_BODY.replace(/\r\n/g, '\n'));
    expect(await main.innerText()).toContain('We received your request');
    expect(await main.innerText()).toContain('We confirmed by email that it arrived');

    // Nothing from the mail became markup or ran.
    expect(await page.locator('script, img, svg, iframe, object, embed').count()).toBe(0);
    expect(await page.locator('h1').count()).toBe(1);
    expect(await page.locator('a').count()).toBe(1);
    expect(await page.evaluate('typeof window.__pwned')).toBe('undefined');
    expect(dialogs).toEqual([]);
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);

    await page.screenshot({ path: join(SCREENSHOTS, 'status-page-desktop.png'), fullPage: true });
    await page.close();
  });

  it('detects a script that does run, so the checks above can fail', { timeout: 30_000 }, async () => {
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.setContent(
      '<img src="data:," onerror="window.__pwned=1"><script>alert("control")</script><img src=x onerror="window.__pwned=1">',
    );
    await page.waitForFunction('window.__pwned === 1');
    expect(dialogs).toEqual(['control']);
    await page.close();
  });

  it('fits a 390px phone screen without sideways scrolling', { timeout: 30_000 }, async () => {
    const { page, dialogs } = await open(first.url, { width: 390, height: 844 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    expect(await page.locator('.status-words').isVisible()).toBe(true);
    expect(dialogs).toEqual([]);
    await page.screenshot({ path: join(SCREENSHOTS, 'status-page-phone.png'), fullPage: false });
    await page.screenshot({ path: join(SCREENSHOTS, 'status-page-phone-full.png'), fullPage: true });
    await page.close();
  });

  it('opens a second ticket’s link on that ticket only', { timeout: 90_000 }, async () => {
    const second = await linkFromAck(
      customerMail({
        from: 'Bob Builder <bob@customer.example>',
        subject: 'Scanner offline',
        body: 'The scanner shows error 42.',
        messageId: 'second-1@customer.example',
      }),
      2,
    );
    expect(second.url).not.toBe(first.url);
    const { page, dialogs } = await open(second.url, { width: 1280, height: 900 });
    const text = await page.locator('main').innerText();
    expect(await page.locator('h1').innerText()).toBe('Scanner offline');
    expect(text).toContain(second.ref);
    expect(text).toContain('The scanner shows error 42.');
    expect(text).toContain('1 open request is ahead of yours.');
    expect(text).not.toContain(first.ref);
    expect(text).not.toContain('Printer');
    expect(text).not.toContain('Eve');
    expect(dialogs).toEqual([]);

    // An agent answers and puts the ticket on hold: the customer sees both on reload.
    const rt = daemon.runtime;
    await rt.store.addAgentReply(
      second.ref,
      (t, statusUrl, thread) =>
        composeAgentReply(
          { config: rt.config, mailbox: rt.mailbox(t.mailbox), templates: rt.templates },
          t,
          'Hello Bob,\n\nwe have ordered a new scanner lamp.\nWe will fit it as soon as it arrives.\n\nSam',
          statusUrl,
          thread,
        ),
      await rt.pipeline.policy(),
      Date.now(),
    );
    await rt.store.setStatus(second.ref, 'on-hold', { reason: 'waiting for a spare part', now: Date.now() });
    await page.reload();
    const after = await page.locator('main').innerText();
    expect(await page.locator('.status-words').innerText()).toBe('On hold');
    expect(after).toContain('Reason: waiting for a spare part');
    expect(after).toContain('We replied\nHello Bob,\n\nwe have ordered a new scanner lamp.');
    expect(after).not.toContain('Status of your request');
    expect(after).toMatch(/We aim to resolve your request by /);
    expect(after).toContain('Status: on hold\nReason: waiting for a spare part');
    await page.screenshot({ path: join(SCREENSHOTS, 'status-page-on-hold-desktop.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(SCREENSHOTS, 'status-page-on-hold-phone.png'), fullPage: true });
    await page.close();
  });

  it('shows the same not-found page for a link that does not exist', { timeout: 30_000 }, async () => {
    const { page, status } = await open(`${publicUrl}/t/${'A'.repeat(43)}`, { width: 390, height: 844 });
    expect(status).toBe(404);
    expect(await page.locator('h1').innerText()).toBe('This link does not work');
    await page.screenshot({ path: join(SCREENSHOTS, 'status-page-not-found.png') });
    await page.close();
  });
});

// The rating a customer gives on the status page, in real headless Chromium
// against the daemon: the resolution mail links to the form once per score,
// a link opens the form with its score chosen, a rating is a POST from that
// form and a second one replaces the first, while a GET and a submission
// from another site change nothing.

import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrowserEnv, type BrowserEnv } from '../harness/browser-env.js';
import { SCREENSHOTS } from '../harness/chromium.js';
import { ratingLinks } from '../harness/rating-links.js';
import { customerMail, SUPPORT, type TicketdEnv } from '../harness/ticketd-env.js';

let browser: BrowserEnv;
let env: TicketdEnv;
let context: BrowserContext;
let publicUrl: string;

beforeAll(async () => {
  browser = await startBrowserEnv();
  ({ env, context, publicUrl } = browser);
}, 120_000);

afterAll(async () => {
  await browser?.stop();
}, 60_000);

/** Submits the rating form and waits for the page it leads back to. */
async function send(page: Page): Promise<void> {
  const [posted] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.locator('#rate button[type="submit"]').click(),
  ]);
  expect(posted.status(), await posted.text().catch(() => '')).toBe(303);
  await page.waitForLoadState('load');
}

describe('rating on the status page', () => {
  let ref = '';
  let rateUrl = '';
  let pageUrl = '';

  it('links the resolution mail to the rating form', { timeout: 90_000 }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Kettle does not heat', messageId: 'rate-1@customer.example', body: 'It stays cold.' }),
    );
    const [ack] = await env.smtp.waitFor(1, 30_000);
    ref = /\[(ACME-\w{6})\]/.exec(ack!.parsed.subject!)![1]!;
    pageUrl = new RegExp(`${publicUrl}/t/[A-Za-z0-9_-]{43}`).exec(ack!.parsed.text ?? '')![0];
    expect(ack!.parsed.text).not.toContain('#rate');

    const r = await env.cli(['tickets', 'resolve', ref, '--message', 'The new element is in; the kettle heats again.']);
    expect(r.code, r.stderr).toBe(0);
    const mails = await env.smtp.waitFor(2, 30_000);
    const resolution = mails[1]!;
    expect(resolution.envelope.to).toEqual(['jane@customer.example']);
    expect(resolution.parsed.text).toContain('How did we do? Choose a score from 1 (poor) to 5 (excellent)');
    const links = ratingLinks(resolution);
    expect(links.textScores).toEqual([1, 2, 3, 4, 5]);
    expect(links.htmlScores).toEqual([1, 2, 3, 4, 5]);
    expect(links.pages).toEqual([pageUrl]);
    rateUrl = `${pageUrl}#rate`;
  });

  it('stores a rating sent from the form, and a second one replaces the first', { timeout: 90_000 }, async () => {
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const response = await page.goto(rateUrl, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("form-action 'self'");
    const form = page.locator('#rate form');
    expect(await form.isVisible()).toBe(true);
    // The invitation sits in the reply's signature, so the history shows the reply without it.
    expect(await page.locator('.timeline').innerText()).toContain('The new element is in; the kettle heats again.');
    expect(await page.locator('.timeline').innerText()).not.toContain('How did we do');
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.locator('#rate').screenshot({ path: join(SCREENSHOTS, 'rating-form-phone.png') });
    await page.screenshot({ path: join(SCREENSHOTS, 'rating-page-phone-full.png'), fullPage: true });

    await page.locator('input[name="score"][value="4"]').check();
    await page.locator('textarea[name="comment"]').fill('Quick, but the first answer was in English.');
    await send(page);
    expect(await page.locator('.rated').innerText()).toContain('You rated our help 4 out of 5.');
    expect((await env.showTicket(ref)).rating).toMatchObject({
      score: 4,
      comment: 'Quick, but the first answer was in English.',
    });

    await page.locator('input[name="score"][value="2"]').check();
    await page.locator('textarea[name="comment"]').fill('On second thought: it broke again.');
    await send(page);
    expect(await page.locator('.rated').innerText()).toContain('You rated our help 2 out of 5.');
    await page.locator('#rate').screenshot({ path: join(SCREENSHOTS, 'rating-form-rated-phone.png') });
    const shown = await env.showTicket(ref);
    expect(shown.rating).toEqual({ score: 2, comment: 'On second thought: it broke again.', at: expect.any(String) });
    expect(shown.events.filter((e: any) => e.type === 'rated').map((e: any) => e.detail)).toEqual([
      { score: 4, comment: 'Quick, but the first answer was in English.', replaced: false },
      { score: 2, comment: 'On second thought: it broke again.', replaced: true },
    ]);
    await page.close();
  });

  it('refuses a submission from another site, even with a token copied from the page', { timeout: 60_000 }, async () => {
    const page = await context.newPage();
    await page.goto(pageUrl, { waitUntil: 'load' });
    const token = await page.locator('input[name="csrf"]').inputValue();
    await page.close();

    // A form on another origin (here a page with no origin at all) posting to the link.
    const evil = await context.newPage();
    await evil.setContent(
      `<form method="post" action="${pageUrl}"><input name="score" value="1"><input name="csrf" value="${token}"><input name="comment" value="pwned"></form>`,
    );
    const [response] = await Promise.all([
      evil.waitForEvent('response', (r) => r.request().method() === 'POST'),
      evil.evaluate('document.forms[0].submit()'),
    ]);
    expect(response.status()).toBe(403);
    // Closing a page while its navigation is still reading the answer can
    // hang Chromium's close for a minute: let the refusal arrive first.
    expect(await response.text()).toContain('can only be sent from your status page');
    await evil.close();

    // Outside a browser: a wrong Origin without a token, and the right Origin without one.
    const post = (headers: Record<string, string>, body: string) =>
      fetch(pageUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
        redirect: 'manual',
      });
    expect((await post({ origin: 'https://evil.example' }, 'score=1&comment=pwned')).status).toBe(403);
    expect((await post({ origin: publicUrl }, 'score=1&comment=pwned')).status).toBe(403);
    expect((await post({ origin: publicUrl }, 'score=1&comment=pwned&csrf=forged')).status).toBe(403);
    // Anything but a form is answered as before the form existed; an oversized form is refused unread.
    expect((await fetch(pageUrl, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'score=1' })).status).toBe(
      404,
    );
    expect((await post({}, `score=1&comment=${'x'.repeat(40_000)}`)).status).toBe(413);
    // A GET never changes anything, whatever it carries.
    expect((await fetch(`${pageUrl}?score=1&comment=pwned&csrf=${encodeURIComponent(token)}`)).status).toBe(200);

    expect((await env.showTicket(ref)).rating).toMatchObject({ score: 2, comment: 'On second thought: it broke again.' });
    expect((await env.showTicket(ref)).events.filter((e: any) => e.type === 'rated')).toHaveLength(2);
  });

  it('shows no form on a ticket that is not resolved', { timeout: 90_000 }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Toaster smokes', messageId: 'rate-2@customer.example', body: 'Smoke!' }),
    );
    const mails = await env.smtp.waitFor(3, 30_000);
    const url = new RegExp(`${publicUrl}/t/[A-Za-z0-9_-]{43}`).exec(mails[2]!.parsed.text ?? '')![0];
    const page = await context.newPage();
    const response = await page.goto(url, { waitUntil: 'load' });
    expect(await page.locator('#rate').count()).toBe(0);
    // A page without the form may submit nothing anywhere.
    expect(response?.headers()['content-security-policy']).toContain("form-action 'none'");
    await page.close();
  });
});

describe('one click per score in the resolution mail', () => {
  it('opens the form with the score chosen, stores nothing until the form is sent, then stores that score', {
    timeout: 90_000,
  }, async () => {
    await env.dovecot.appendMessage(
      SUPPORT,
      'INBOX',
      customerMail({ subject: 'Fridge hums', messageId: 'rate-3@customer.example', body: 'Loud humming at night.' }),
    );
    const [ack] = (await env.smtp.waitFor(4, 30_000)).slice(3);
    const fridge = /\[(ACME-\w{6})\]/.exec(ack!.parsed.subject!)![1]!;
    // Resolved without a last reply: the mail that says so carries the links.
    const r = await env.cli(['tickets', 'resolve', fridge]);
    expect(r.code, r.stderr).toBe(0);
    const [resolution] = (await env.smtp.waitFor(5, 30_000)).slice(4);
    expect(resolution!.envelope.to).toEqual(['jane@customer.example']);
    expect(resolution!.parsed.inReplyTo).toBe(ack!.parsed.messageId);
    const four = ratingLinks(resolution!).forScore(4);
    expect(four).toMatch(new RegExp(`^${publicUrl}/t/[\\w-]{43}\\?score=4#rate$`));

    // A GET of the link, outside a browser too, changes nothing.
    expect((await fetch(four)).status).toBe(200);
    const page = await context.newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const response = await page.goto(four, { waitUntil: 'load' });
    expect(response?.status()).toBe(200);
    expect(await page.locator('input[name="score"][value="4"]').isChecked()).toBe(true);
    expect(await page.locator('input[name="score"]:checked').count()).toBe(1);
    expect(await page.locator('#rate .chosen').innerText()).toContain('You chose 4 out of 5.');
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    await page.locator('#rate').screenshot({ path: join(SCREENSHOTS, 'rating-one-click-chosen-phone.png') });
    const opened = await env.showTicket(fridge);
    expect(opened.rating).toBeNull();
    expect(opened.events.filter((e: any) => e.type === 'rated')).toEqual([]);

    await page.locator('textarea[name="comment"]').fill('Fixed on the first visit.');
    await send(page);
    expect(await page.locator('.rated').innerText()).toContain('You rated our help 4 out of 5.');
    // Back on the page itself: the stored score is what is checked, and nothing is "chosen" any more.
    expect(page.url()).not.toContain('score=');
    expect(await page.locator('#rate .chosen').count()).toBe(0);
    await page.close();
    expect((await env.showTicket(fridge)).rating).toMatchObject({ score: 4, comment: 'Fixed on the first visit.' });
  });
});

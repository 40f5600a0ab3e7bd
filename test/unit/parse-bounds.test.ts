// Hostile input to the parse stage: HTML built to make the conversion to
// text slow or huge, and a message with thousands of parts. Each must end in
// a verdict with bounded work, not in minutes of a blocked thread or
// thousands of files.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_HTML_CHARS, MAX_HTML_DEPTH, MAX_HTML_ELEMENTS, htmlToText } from '../../src/parse/html-text.js';
import { parseMessage } from '../../src/parse/parse-message.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-bounds-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function htmlMail(html: string): Buffer {
  return Buffer.from(
    [
      'From: Mallory <mallory@attacker.example>',
      'To: support@example.com',
      'Subject: hostile html',
      'Message-ID: <hostile@attacker.example>',
      'MIME-Version: 1.0',
      'Content-Type: text/html; charset=utf-8',
      '',
      html,
      '',
    ].join('\r\n'),
  );
}

/** About 2.2 MB: a greeting, then 200,000 `<div>` nested inside each other. */
function nestedDivs(levels = 200_000): string {
  return `<html><body><p>Hello, my order 4711 is missing.</p>${'<div>\n'.repeat(levels)}deep${'</div>'.repeat(levels)}</body></html>`;
}

describe('HTML to text: bounded', () => {
  // Before the bound, htmlparser2 spent over a minute on this (each level
  // makes every later tag dearer); the generous timeout only catches that.
  it('converts 200,000 nested divs, keeping what lies above the nesting limit', { timeout: 20_000 }, async () => {
    const verdict = await parseMessage(htmlMail(nestedDivs()), { attachmentsDir: dir, maxAttachmentBytes: 1e6 });
    expect(verdict.ok).toBe(true);
    if (!verdict.ok) return;
    expect(verdict.message.textFromHtml).toBe(true);
    expect(verdict.message.text).toContain('Hello, my order 4711 is missing.');
    // The innermost text sits 200,000 levels down: cut with everything below the limit.
    expect(verdict.message.text).not.toContain('deep');
  });

  it('keeps the text of nesting up to the limit', () => {
    const depth = MAX_HTML_DEPTH - 10;
    expect(htmlToText(`${'<div>'.repeat(depth)}still here${'</div>'.repeat(depth)}`)).toBe('still here');
  });

  it('converts no more than MAX_HTML_ELEMENTS elements of a megabyte of tiny nested blocks', () => {
    const tree = `${'<div>'.repeat(100)}x${'</div>'.repeat(100)}`;
    const html = `<p>first words</p>${tree.repeat(Math.ceil(MAX_HTML_ELEMENTS / 100) + 10)}<p>tail marker</p>`;
    const text = htmlToText(html);
    expect(text).toContain('first words');
    expect(text).not.toContain('tail marker');
  });

  it('reads no more than MAX_HTML_CHARS of a 15 MB table', { timeout: 20_000 }, () => {
    const rows = Array.from({ length: 300_000 }, (_, i) => `<tr><td>row ${i}</td><td>cell</td></tr>`).join('');
    const html = `<table>${rows}</table>`;
    expect(html.length).toBeGreaterThan(10 * MAX_HTML_CHARS);
    const text = htmlToText(html);
    expect(text).toContain('row 0');
    // Rows past the first MiB of markup are not converted at all.
    expect(text).not.toContain('row 299999');
    expect(text).not.toContain('row 100000');
  });
});

describe('attachments: bounded in count', () => {
  it('writes at most maxAttachmentFiles files for a message of 900 parts, and lists them all', async () => {
    const parts = Array.from({ length: 900 }, (_, i) =>
      [
        '--b',
        `Content-Type: application/octet-stream; name="p${i}.bin"`,
        'Content-Disposition: attachment',
        '',
        `part ${i}`,
      ].join('\r\n'),
    );
    const raw = Buffer.from(
      [
        'From: Mallory <mallory@attacker.example>',
        'Subject: many parts',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'see attached',
        ...parts,
        '--b--',
        '',
      ].join('\r\n'),
    );
    const verdict = await parseMessage(raw, { attachmentsDir: dir, maxAttachmentBytes: 1e6, maxAttachmentFiles: 100 });
    expect(verdict.ok).toBe(true);
    if (!verdict.ok) return;
    expect(verdict.message.attachments).toHaveLength(900);
    expect(verdict.message.attachments.filter((a) => a.path !== null)).toHaveLength(100);
    expect(verdict.message.attachments[100]).toMatchObject({ path: null, truncated: true });
    const [shaDir] = readdirSync(dir);
    expect(readdirSync(join(dir, shaDir!))).toHaveLength(100);
  });

  it('writes at most 100 files (the default) for a 10,000-part message, which fails to parse', async () => {
    const parts = Array.from({ length: 10_000 }, (_, i) =>
      [
        '--b',
        `Content-Type: application/octet-stream; name="p${i}.bin"`,
        'Content-Disposition: attachment',
        '',
        `part ${i}`,
      ].join('\r\n'),
    );
    const raw = Buffer.from(
      ['Subject: bomb', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', ...parts, '--b--', ''].join(
        '\r\n',
      ),
    );
    const verdict = await parseMessage(raw, { attachmentsDir: dir, maxAttachmentBytes: 1e6 });
    // mailparser gives up past 1,000 parts; what was written until then stays within the cap.
    expect(verdict.ok).toBe(false);
    const written = readdirSync(dir).flatMap((d) => readdirSync(join(dir, d)));
    expect(written.length).toBeLessThanOrEqual(100);
  });

  it('caps files at 100 by default', async () => {
    const parts = Array.from({ length: 150 }, (_, i) =>
      [
        '--b',
        `Content-Type: application/octet-stream; name="p${i}.bin"`,
        'Content-Disposition: attachment',
        '',
        `part ${i}`,
      ].join('\r\n'),
    );
    const raw = Buffer.from(
      ['Subject: many', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '', ...parts, '--b--', ''].join(
        '\r\n',
      ),
    );
    const verdict = await parseMessage(raw, { attachmentsDir: dir, maxAttachmentBytes: 1e6 });
    expect(verdict.ok && verdict.message.attachments.filter((a) => a.path !== null).length).toBe(100);
  });
});

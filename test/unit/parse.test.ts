import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ParsedMessage } from '../../src/core/types.js';
import { safeFileName } from '../../src/parse/attachment-store.js';
import { parseMessageIds, readFields, unfold } from '../../src/core/header-fields.js';
import { PARSE_FAILED, PARSE_TIMEOUT, parseMessage, type ParseOptions } from '../../src/parse/parse-message.js';

// Every write to an attachment file is recorded, to show that attachment
// content reaches the disk chunk by chunk instead of as one buffered blob.
const fileWrites = vi.hoisted(() => ({ sizes: [] as number[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    open: async (...args: Parameters<typeof actual.open>) => {
      const handle = await actual.open(...args);
      const write = handle.write.bind(handle) as (buffer: Buffer) => Promise<unknown>;
      Object.assign(handle, {
        write: (buffer: Buffer) => {
          fileWrites.sizes.push(buffer.length);
          return write(buffer);
        },
      });
      return handle;
    },
  };
});

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'mail');

/** The PDF attached to attachment.eml. */
const FIXTURE_PDF =
  '%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n';

function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-parse-'));
  fileWrites.sizes.length = 0;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function options(extra: Partial<ParseOptions> = {}): ParseOptions {
  return { attachmentsDir: dir, maxAttachmentBytes: 10 * 1024 * 1024, ...extra };
}

async function parseOk(raw: Buffer | string, extra: Partial<ParseOptions> = {}): Promise<ParsedMessage> {
  const verdict = await parseMessage(typeof raw === 'string' ? Buffer.from(raw) : raw, options(extra));
  if (!verdict.ok) throw new Error(`expected ok, got ${verdict.reason}`);
  return verdict.message;
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A message with one base64 attachment of `content`. */
function withAttachment(content: Buffer, filename = 'blob.bin'): Buffer {
  const body = content.toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [
      'From: sender@example.org',
      'To: support@support.example.com',
      'Subject: big file',
      'Message-ID: <big.1@example.org>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'see attachment',
      '--b1',
      `Content-Type: application/octet-stream; name="${filename}"`,
      'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${filename}"`,
      '',
      body,
      '--b1--',
      '',
    ].join('\r\n'),
  );
}

describe('parseMessage: headers and addresses', () => {
  it('reads a plain message', async () => {
    const raw = fixture('plain.eml');
    const msg = await parseOk(raw);
    expect(msg.messageId).toBe('CAF3xq7Y9k2=PRT1@mail.example.org');
    expect(msg.subject).toBe('Printer on the 3rd floor prints blank pages');
    expect(msg.from).toEqual({ address: 'jane.doe@example.org', name: 'Jane Doe' });
    expect(msg.to).toEqual([{ address: 'support@support.example.com', name: 'Example Support' }]);
    expect(msg.cc).toEqual([{ address: 'bob@example.org', name: '' }]);
    expect(msg.replyTo).toEqual([]);
    expect(msg.returnPath).toBe('jane.doe@example.org');
    expect(msg.date?.toISOString()).toBe('2025-07-01T07:13:58.000Z');
    expect(msg.language).toBe('en-gb');
    expect(msg.contentType).toBe('text/plain');
    expect(msg.text).toBe(
      'Hello,\n\nsince this morning the printer next to the kitchen on the 3rd floor\nprints only blank pages. I already replaced the toner.\n\nThanks,\nJane\n',
    );
    expect(msg.textFromHtml).toBe(false);
    expect(msg.report).toBeNull();
    expect(msg.attachments).toEqual([]);
    expect(msg.size).toBe(raw.length);
    expect(msg.sha256).toBe(sha256(raw));
  });

  it('keeps header values raw and unfolded, in order, under lower-case names', async () => {
    const msg = await parseOk(fixture('plain.eml'));
    expect(msg.headers.get('received')).toEqual([
      'from mail.example.org (mail.example.org [203.0.113.25])\tby mx.support.example.com (Postfix) with ESMTPS id 4Xk2Lm0Qz1z9sW\tfor <support@support.example.com>; Tue,  1 Jul 2025 09:14:03 +0200 (CEST)',
    ]);
    expect(msg.headers.get('from')).toEqual(['"Jane Doe" <Jane.Doe@Example.ORG>']);
    expect(msg.headers.get('content-language')).toEqual(['en-GB']);

    const encoded = await parseOk(fixture('encoded-word-subject.eml'));
    expect(encoded.headers.get('subject')).toEqual([
      "=?UTF-8?Q?Probl=C3=A8me_de_connexion_?= =?ISO-8859-1?Q?=E0_l'extranet?= (urgent)",
    ]);

    const repeated = await parseOk('From: a@example.org\nX-Tag: one\nX-Tag: two\n  folded\n\nbody\n');
    expect(repeated.headers.get('x-tag')).toEqual(['one', 'two  folded']);
  });

  it('reads raw 8-bit UTF-8 header values as UTF-8', async () => {
    const msg = await parseOk(Buffer.from('From: Jürgen <j@example.de>\nSubject: Grüße\nX-Note: Maß €\n\nx\n', 'utf8'));
    expect(msg.headers.get('x-note')).toEqual(['Maß €']);
    expect(msg.subject).toBe('Grüße');
    expect(msg.from).toEqual({ address: 'j@example.de', name: 'Jürgen' });
  });

  it('decodes encoded-word subjects and display names', async () => {
    const msg = await parseOk(fixture('encoded-word-subject.eml'));
    expect(msg.subject).toBe("Problème de connexion à l'extranet (urgent)");
    expect(msg.from).toEqual({ address: 'anne@example.fr', name: 'Anne Lévesque' });

    const japanese = await parseOk(fixture('base64-utf8.eml'));
    expect(japanese.subject).toBe('パスワードを忘れました');
  });

  it('reads CRLF line endings the same as LF', async () => {
    const lf = await parseOk(fixture('plain.eml'));
    const crlf = await parseOk(fixture('plain.eml').toString('utf8').replace(/\n/g, '\r\n'));
    expect(crlf.text).toBe(lf.text);
    expect(crlf.from).toEqual(lf.from);
    expect(crlf.headers.get('received')).toEqual(lf.headers.get('received'));
  });

  it('parses In-Reply-To and References into bare ids', async () => {
    const msg = await parseOk(fixture('multipart-alternative.eml'));
    expect(msg.inReplyTo).toEqual(['ack.T-1042.1@support.example.com']);
    expect(msg.references).toEqual(['CAF3xq7Y9k2=PRT0@example.it', 'ack.T-1042.1@support.example.com']);

    const sloppy = await parseOk(
      [
        'From: a@example.org',
        'Message-ID: no-brackets@example.org',
        'In-Reply-To: <id1@example.org> (Jane\'s message of "Mon, 7 Jul 2025")',
        'References: <r1@example.org>',
        '\t<r2@example.org> <r3@example.org>',
        'References: r4@example.org',
        '',
        'body',
      ].join('\n'),
    );
    expect(sloppy.messageId).toBe('no-brackets@example.org');
    expect(sloppy.inReplyTo).toEqual(['id1@example.org']);
    expect(sloppy.references).toEqual(['r1@example.org', 'r2@example.org', 'r3@example.org', 'r4@example.org']);
  });

  it('tells the null sender from a missing Return-Path, and tolerates a missing From', async () => {
    const nullSender = await parseOk('Return-Path: <>\nFrom: MAILER-DAEMON@mx.example.org\n\nx\n');
    expect(nullSender.returnPath).toBe('');
    expect(nullSender.from).toEqual({ address: 'mailer-daemon@mx.example.org', name: '' });

    const bare = await parseOk(fixture('dsn-delayed-headers.eml'));
    expect(bare.from).toEqual({ address: 'mailer-daemon', name: '' });

    const nothing = await parseOk('Subject: who sent this\n\nx\n');
    expect(nothing.returnPath).toBeNull();
    expect(nothing.from).toBeNull();
    expect(nothing.messageId).toBeNull();
    expect(nothing.date).toBeNull();
    expect(nothing.language).toBeNull();
    expect(nothing.contentType).toBe('text/plain');
  });

  it('gives null for a message without Message-ID and for an unreadable Date', async () => {
    const msg = await parseOk(fixture('no-message-id.eml'));
    expect(msg.messageId).toBeNull();
    expect(msg.subject).toBe('Scan from MFP-3F');

    const badDate = await parseOk('From: a@example.org\nDate: sometime last week\n\nx\n');
    expect(badDate.date).toBeNull();
  });

  it('takes the first Content-Language tag', async () => {
    const msg = await parseOk(fixture('windows-1252-qp.eml'));
    expect(msg.language).toBe('de-de');
  });

  it('falls back to the first Accept-Language tag, and ignores values that are no language', async () => {
    const accepted = await parseOk('From: a@example.org\nAccept-Language: fr-CH;q=1, en;q=0.5\n\nx\n');
    expect(accepted.language).toBe('fr-ch');
    const both = await parseOk('From: a@example.org\nContent-Language: de\nAccept-Language: fr\n\nx\n');
    expect(both.language).toBe('de');
    const junk = await parseOk('From: a@example.org\nContent-Language: <script>\n\nx\n');
    expect(junk.language).toBeNull();
  });
});

describe('parseMessage: body text', () => {
  it('decodes windows-1252 quoted-printable', async () => {
    const msg = await parseOk(fixture('windows-1252-qp.eml'));
    expect(msg.text).toBe('Die Rechnung über 19,99 € wurde doppelt abgebucht. Bitte prüfen Sie das – danke.\n\nGrüße\nKarl\n');
    expect(msg.from).toEqual({ address: 'k.schmidt@example.de', name: 'Karl Müller' });
  });

  it('decodes an 8-bit ISO-8859-1 body', async () => {
    const msg = await parseOk(fixture('iso-8859-1-8bit.eml'));
    expect(msg.text).toBe('Mein Zugang ist seit heute früh gesperrt.\n\nGrüße aus Österreich\nLena\n');
  });

  it('decodes a base64 UTF-8 body', async () => {
    const msg = await parseOk(fixture('base64-utf8.eml'));
    expect(msg.text).toBe('パスワードを忘れました。\nReset please – Grüße €\n');
  });

  it('uses the plain part of multipart/alternative', async () => {
    const msg = await parseOk(fixture('multipart-alternative.eml'));
    expect(msg.text).toBe('It happened again at 08:12, logs attached to the previous mail.\n');
    expect(msg.textFromHtml).toBe(false);
    expect(msg.contentType).toBe('multipart/alternative');
  });

  it('converts an HTML-only body to text without tags, images, styles or link targets', async () => {
    const msg = await parseOk(fixture('html-only.eml'));
    expect(msg.textFromHtml).toBe(true);
    expect(msg.text).toBe('Hello support team,\n\ninvoice #4411 was charged twice. See order 4411.\n\nRegards,\nAccounts');
    expect(msg.text).not.toMatch(/[<>]/);
  });

  it('caps the text at maxTextChars', async () => {
    const msg = await parseOk(fixture('plain.eml'), { maxTextChars: 10 });
    expect(msg.text).toBe('Hello,\n\nsi');
  });
});

describe('parseMessage: attachments', () => {
  it('streams attachments to <dir>/<sha256>/<index>-<safe name>', async () => {
    const raw = fixture('attachment.eml');
    const msg = await parseOk(raw);
    const target = join(dir, sha256(raw));
    expect(msg.attachments).toHaveLength(2);

    const [pdf, csv] = msg.attachments;
    expect(pdf?.filename).toBe('Rechnung März 2025.pdf');
    expect(pdf?.contentType).toBe('application/pdf');
    expect(pdf?.path).toBe(join(target, '0-Rechnung_Marz_2025.pdf'));
    expect(pdf?.size).toBe(142);
    expect(pdf?.truncated).toBe(false);
    const pdfBytes = readFileSync(pdf?.path ?? '');
    expect(pdfBytes.toString('latin1')).toBe(FIXTURE_PDF);
    expect(pdf?.sha256).toBe(sha256(pdfBytes));

    // The sender-chosen name may not steer the path.
    expect(csv?.filename).toBe('../../etc/cron.d/kontoauszug.csv');
    expect(csv?.path).toBe(join(target, '1-kontoauszug.csv'));
    expect(readFileSync(csv?.path ?? '', 'utf8')).toBe('date;amount\n2025-07-01;19.99\n2025-07-01;19.99\n');
    expect(readdirSync(target).sort()).toEqual(['0-Rechnung_Marz_2025.pdf', '1-kontoauszug.csv']);
  });

  it('overwrites instead of duplicating when the same message is parsed again', async () => {
    const raw = fixture('attachment.eml');
    const first = await parseOk(raw);
    const second = await parseOk(raw);
    expect(second.attachments).toEqual(first.attachments);
    expect(readdirSync(join(dir, sha256(raw)))).toHaveLength(2);
    expect(statSync(second.attachments[0]?.path ?? '').size).toBe(142);
  });

  it('stops writing at the per-message cap and leaves later parts off disk', async () => {
    const raw = fixture('attachment.eml');
    const msg = await parseOk(raw, { maxAttachmentBytes: 100 });
    const [pdf, csv] = msg.attachments;

    expect(pdf?.truncated).toBe(true);
    expect(pdf?.size).toBe(100);
    const onDisk = readFileSync(pdf?.path ?? '');
    expect(onDisk.length).toBe(100);
    expect(onDisk.equals(Buffer.from(FIXTURE_PDF).subarray(0, 100))).toBe(true);
    expect(pdf?.sha256).toBe(sha256(onDisk));

    expect(csv).toMatchObject({ path: null, truncated: true, size: 0 });
    expect(readdirSync(join(dir, sha256(raw)))).toEqual(['0-Rechnung_Marz_2025.pdf']);

    // The text after the attachments still arrives: the parser was not stalled.
    expect(msg.text).toBe('Anbei die Rechnung und der Kontoauszug.\n');
  });

  it('creates no directory for a message without attachments or with a zero cap', async () => {
    const plain = fixture('plain.eml');
    await parseOk(plain);
    expect(existsSync(join(dir, sha256(plain)))).toBe(false);

    const withFiles = fixture('attachment.eml');
    const msg = await parseOk(withFiles, { maxAttachmentBytes: 0 });
    expect(msg.attachments.map((a) => a.path)).toEqual([null, null]);
    expect(existsSync(join(dir, sha256(withFiles)))).toBe(false);
  });

  it('streams a 5 MB attachment to disk in chunks', async () => {
    const content = randomBytes(5 * 1024 * 1024);
    const msg = await parseOk(withAttachment(content));
    const [record] = msg.attachments;
    expect(record?.size).toBe(content.length);
    expect(record?.sha256).toBe(sha256(content));
    expect(readFileSync(record?.path ?? '').equals(content)).toBe(true);
    expect(fileWrites.sizes.reduce((sum, size) => sum + size, 0)).toBe(content.length);
    expect(fileWrites.sizes.length).toBeGreaterThan(20);
    expect(Math.max(...fileWrites.sizes)).toBeLessThanOrEqual(256 * 1024);
  });

  it('sanitises file names to a plain basename', () => {
    expect(safeFileName('../../etc/passwd')).toBe('passwd');
    expect(safeFileName('C:\\Windows\\evil.exe')).toBe('evil.exe');
    expect(safeFileName('..')).toBe('attachment');
    expect(safeFileName('.htaccess')).toBe('htaccess');
    expect(safeFileName('Größe & Maß?.txt')).toBe('Gro_e_Ma_.txt');
    expect(safeFileName(undefined)).toBe('attachment');
    expect(safeFileName(`${'x'.repeat(300)}.pdf`)).toHaveLength(120);
    expect(safeFileName(`${'x'.repeat(300)}.pdf`).endsWith('.pdf')).toBe(true);
  });
});

describe('parseMessage: delivery reports', () => {
  it('keeps the delivery-status text and the header block of the returned message', async () => {
    const raw = fixture('dsn-postfix.eml');
    const msg = await parseOk(raw);
    expect(msg.contentType).toBe('multipart/report');
    expect(msg.returnPath).toBe('');
    expect(msg.report?.reportType).toBe('delivery-status');
    expect(msg.report?.deliveryStatus).toContain('Final-Recipient: rfc822; nobody@example.org\nOriginal-Recipient');
    expect(msg.report?.originalHeaders).toMatch(/^Return-Path: <support@support\.example\.com>\n/);
    expect(msg.report?.originalHeaders).toContain('Message-ID: <ack.T-1043.1751976190@support.example.com>');
    expect(msg.report?.originalHeaders?.endsWith('Content-Type: text/plain; charset=utf-8')).toBe(true);
    expect(msg.report?.originalHeaders).not.toContain('Thank you, your request');
    // The human-readable notification is the text; the report parts are stored as attachments.
    expect(msg.text).toContain('User unknown in virtual');
    expect(msg.attachments.map((a) => a.contentType)).toEqual(['message/delivery-status', 'message/rfc822']);
    expect(readFileSync(msg.attachments[1]?.path ?? '', 'utf8')).toContain('Thank you, your request');
  });

  it('keeps a text/rfc822-headers part whole', async () => {
    const msg = await parseOk(fixture('dsn-delayed-headers.eml'));
    expect(msg.report?.reportType).toBe('delivery-status');
    expect(msg.report?.deliveryStatus).toContain('Action: delayed');
    expect(msg.report?.originalHeaders).toContain('Message-ID:\n <ack.T-1044.1752019501@support.example.com>');
  });

  it('reads report parts even when nothing may be written to disk', async () => {
    const msg = await parseOk(fixture('dsn-postfix.eml'), { maxAttachmentBytes: 0 });
    expect(msg.attachments.every((a) => a.path === null && a.truncated)).toBe(true);
    expect(msg.report?.deliveryStatus).toContain('Action: failed');
    expect(msg.report?.originalHeaders).toContain('Message-ID: <ack.T-1043.1751976190@support.example.com>');
  });

  it('keeps at most 64 KiB of a report part in memory', async () => {
    const padding = Array.from({ length: 2000 }, (_, i) => `X-Padding-${i}: ${'p'.repeat(60)}`).join('\n');
    const raw = [
      'Return-Path: <>',
      'From: MAILER-DAEMON@mx.example.org',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="r"',
      '',
      '--r',
      'Content-Type: text/plain',
      '',
      'failed',
      '--r',
      'Content-Type: message/delivery-status',
      '',
      `Reporting-MTA: dns; mx.example.org\n${padding}`,
      '--r--',
      '',
    ].join('\n');
    const msg = await parseOk(raw);
    expect(msg.report?.deliveryStatus).toHaveLength(64 * 1024);
    expect(msg.report?.deliveryStatus?.startsWith('Reporting-MTA: dns; mx.example.org\n')).toBe(true);
    expect(msg.attachments[0]?.size).toBeGreaterThan(64 * 1024);
  });

  it('does not fill report for other content types', async () => {
    const msg = await parseOk(fixture('attachment.eml'));
    expect(msg.report).toBeNull();
  });
});

describe('parseMessage: bad input', () => {
  it('never throws on a truncated, malformed message', async () => {
    const verdict = await parseMessage(fixture('garbage-truncated.eml'), options());
    if (verdict.ok) {
      expect(verdict.message.from).toBeNull();
      expect(verdict.message.messageId).toBeNull();
      expect(verdict.message.date).toBeNull();
    } else {
      expect(verdict.reason.startsWith(`${PARSE_FAILED}: `)).toBe(true);
    }
  });

  it('never throws on random bytes', async () => {
    for (let i = 0; i < 5; i++) {
      const verdict = await parseMessage(randomBytes(20_000), options());
      expect(typeof verdict.ok).toBe('boolean');
    }
  });

  it('refuses an empty message', async () => {
    expect(await parseMessage(Buffer.alloc(0), options())).toEqual({ ok: false, reason: `${PARSE_FAILED}: empty message` });
  });

  it('turns a mailparser error into a parse-failed verdict', async () => {
    const verdict = await parseMessage(Buffer.from(`Subject: ${'a'.repeat(2 * 1024 * 1024)}\n\nbody\n`), options());
    expect(verdict).toEqual({ ok: false, reason: `${PARSE_FAILED}: Max header size for a MIME node exceeded` });
  });

  it('turns a write failure into a parse-failed verdict', async () => {
    const blocker = join(dir, 'not-a-directory');
    writeFileSync(blocker, 'a file where the attachments directory should be');
    const verdict = await parseMessage(fixture('attachment.eml'), options({ attachmentsDir: blocker }));
    expect(verdict.ok).toBe(false);
    expect(!verdict.ok && verdict.reason.startsWith(`${PARSE_FAILED}: `)).toBe(true);
  });

  it('gives up after timeoutMs', async () => {
    const verdict = await parseMessage(withAttachment(randomBytes(5 * 1024 * 1024)), options({ timeoutMs: 5 }));
    expect(verdict).toEqual({ ok: false, reason: PARSE_TIMEOUT });
    // Work cut off by the timeout must wind down quietly: vitest fails the run on an unhandled rejection.
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
});

describe('header helpers', () => {
  it('parseMessageIds tolerates missing brackets, lists and phrases', () => {
    expect(parseMessageIds('<a@x>')).toEqual(['a@x']);
    expect(parseMessageIds('a@x')).toEqual(['a@x']);
    expect(parseMessageIds('<a@x> <b@y>\t<c@z>')).toEqual(['a@x', 'b@y', 'c@z']);
    expect(parseMessageIds('a@x, b@y')).toEqual(['a@x', 'b@y']);
    expect(parseMessageIds('Your message of Monday <a@x>')).toEqual(['a@x']);
    expect(parseMessageIds('   ')).toEqual([]);
  });

  it('unfold and readFields join continuation lines', () => {
    expect(unfold('a: b\r\n c\n\td')).toBe('a: b c\td');
    expect(readFields('Action: failed\nDiagnostic-Code: smtp; 550\n    rejected\nnot a field\n')).toEqual([
      { name: 'action', value: 'failed' },
      { name: 'diagnostic-code', value: 'smtp; 550    rejected' },
    ]);
  });
});

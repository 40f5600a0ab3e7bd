import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ParsedMessage } from '../../src/core/types.js';
import { declaredCharset, headersAsUtf8 } from '../../src/parse/header-charset.js';
import { parseMessage } from '../../src/parse/parse-message.js';

const dir = mkdtempSync(join(tmpdir(), 'ticketd-charset-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function parsed(raw: Buffer | string): Promise<ParsedMessage> {
  const verdict = await parseMessage(typeof raw === 'string' ? Buffer.from(raw) : raw, {
    attachmentsDir: dir,
    maxAttachmentBytes: 1024 * 1024,
  });
  if (!verdict.ok) throw new Error(verdict.reason);
  return verdict.message;
}

/** A message whose Subject (and From name) are raw bytes in a legacy charset, with no encoded words. */
function raw8bit(subject: Buffer, contentType: string, fromName = Buffer.alloc(0)): Buffer {
  return Buffer.concat([
    Buffer.from('From: '),
    fromName,
    Buffer.from(fromName.length > 0 ? ' <li@example.cn>\r\n' : 'li@example.cn\r\n'),
    Buffer.from('To: support@support.example.com\r\nSubject: '),
    subject,
    Buffer.from(`\r\nMessage-ID: <c.1@example.cn>\r\nMIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n\r\nhello\r\n`),
  ]);
}

// The byte sequences are spelled out so the test does not depend on an encoder.
// "你好，打印机坏了" in GBK
const GBK_SUBJECT = Buffer.from('c4e3bac3a3acb4f2d3a1bbfabbb5c1cb', 'hex');
// "プリンターが壊れました" in Shift_JIS
const SJIS_SUBJECT = Buffer.from('8376838a8393835e815b82aa89f382ea82dc82b582bd', 'hex');
// "李明" in GBK
const GBK_NAME = Buffer.from('c0eec3f7', 'hex');
// "프린터 고장" in EUC-KR
const EUCKR_SUBJECT = Buffer.from('c7c1b8b0c5cd20b0edc0e5', 'hex');

describe('raw 8-bit headers', () => {
  it('decodes a GBK subject with the declared charset', async () => {
    const msg = await parsed(raw8bit(GBK_SUBJECT, 'text/plain; charset=GBK', GBK_NAME));
    expect(msg.subject).toBe('你好，打印机坏了');
    expect(msg.from).toEqual({ address: 'li@example.cn', name: '李明' });
  });

  it('decodes a Shift_JIS subject with the charset of the first text part', async () => {
    const raw = Buffer.concat([
      raw8bit(SJIS_SUBJECT, 'multipart/alternative; boundary="b"').subarray(0, -'hello\r\n'.length),
      Buffer.from('--b\r\nContent-Type: text/plain;\r\n charset="Shift_JIS"\r\n\r\nhello\r\n--b--\r\n'),
    ]);
    expect((await parsed(raw)).subject).toBe('プリンターが壊れました');
  });

  it('detects the charset when none is declared', async () => {
    expect((await parsed(raw8bit(GBK_SUBJECT, 'text/plain'))).subject).toBe('你好，打印机坏了');
    expect((await parsed(raw8bit(SJIS_SUBJECT, 'text/plain'))).subject).toBe('プリンターが壊れました');
    expect((await parsed(raw8bit(EUCKR_SUBJECT, 'text/plain'))).subject).toBe('프린터 고장');
  });

  it('does not take a declared UTF-8 at its word when the bytes are not UTF-8', async () => {
    expect((await parsed(raw8bit(GBK_SUBJECT, 'text/plain; charset=utf-8'))).subject).toBe('你好，打印机坏了');
  });

  it('reads an unlabelled Western 8-bit subject as windows-1252 rather than replacement characters', async () => {
    expect((await parsed(raw8bit(Buffer.from('Caf\xe9 cr\xe8me', 'latin1'), 'text/plain'))).subject).toBe('Café crème');
  });

  it('reads raw 8-bit bytes inside a Q-encoded word in that word’s charset', async () => {
    const subject = Buffer.from('=?iso-8859-1?Q?Die_Hasen_und_die_Fr\xf6sche?=', 'latin1');
    expect((await parsed(raw8bit(subject, 'text/plain; charset=iso-8859-1'))).subject).toBe('Die Hasen und die Frösche');
    expect((await parsed(raw8bit(subject, 'text/plain'))).subject).toBe('Die Hasen und die Frösche');
  });

  it('leaves UTF-8 headers and 7-bit messages untouched', async () => {
    const utf8 = raw8bit(Buffer.from('Grüße aus Köln'), 'text/plain; charset=iso-8859-1');
    expect(headersAsUtf8(utf8)).toBe(utf8);
    expect((await parsed(utf8)).subject).toBe('Grüße aus Köln');
    const plain = Buffer.from('From: a@example.org\r\nSubject: hi\r\n\r\nbody \xe9\r\n', 'latin1');
    expect(headersAsUtf8(plain)).toBe(plain);
  });

  it('finds the declared charset at the top or in the first text part', () => {
    expect(declaredCharset(Buffer.from('Content-Type: text/plain;\r\n charset="ISO-8859-2"\r\n\r\nx'))).toBe('iso-8859-2');
    expect(
      declaredCharset(
        Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html; charset=big5\r\n\r\nx'),
      ),
    ).toBe('big5');
    expect(declaredCharset(Buffer.from('Subject: x\r\n\r\nbody'))).toBeNull();
  });
});

describe('sender', () => {
  const body = 'Subject: x\r\nMessage-ID: <s.1@example.org>\r\n\r\nhello\r\n';

  it('takes the first usable From of two', async () => {
    expect((await parsed(`From: \r\nFrom: Jane <jane@example.org>\r\n${body}`)).from).toEqual({
      address: 'jane@example.org',
      name: 'Jane',
    });
    expect((await parsed(`From: undisclosed\r\nFrom: Jane <jane@example.org>\r\n${body}`)).from?.address).toBe(
      'jane@example.org',
    );
    expect((await parsed(`From: Ann <ann@example.org>\r\nFrom: Jane <jane@example.org>\r\n${body}`)).from?.address).toBe(
      'ann@example.org',
    );
  });

  it('falls back to Reply-To, then Sender, then Return-Path', async () => {
    const all = 'Reply-To: r@example.org\r\nSender: s@example.org\r\nReturn-Path: <rp@example.org>\r\n';
    expect((await parsed(`${all}${body}`)).from?.address).toBe('r@example.org');
    expect((await parsed(`From: nobody\r\n${all.slice(all.indexOf('Sender'))}${body}`)).from?.address).toBe('s@example.org');
    expect((await parsed(`Return-Path: <rp@example.org>\r\n${body}`)).from?.address).toBe('rp@example.org');
    expect((await parsed(`From: <>\r\nReturn-Path: <>\r\n${body}`)).from).toBeNull();
  });

  it('keeps a bare MAILER-DAEMON From when nothing better is there', async () => {
    expect((await parsed(`Return-Path: <>\r\nFrom: MAILER-DAEMON (Mail Delivery System)\r\n${body}`)).from?.address).toBe(
      'mailer-daemon',
    );
  });
});

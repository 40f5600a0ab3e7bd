// Customer mail for the benchmark: realistic sizes and shapes, made from a
// seeded generator so every run (and the baseline's copy) sees the same
// bytes, and a way to put thousands of them into a Dovecot mailbox at once.

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DovecotServer } from '../harness/dovecot.js';

/** Mulberry32: small, fast and good enough for test data. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the printer invoice account order delivery refund password login error page screen still again please ' +
  'help urgent since yesterday morning our team cannot open report attached number customer support ' +
  'thank you regards hello problem issue update working broken server email address payment card shipping ' +
  'package tracking weeks ago replacement warranty contract renewal license upgrade download install'
).split(' ');

export interface BenchMessage {
  /** Without angle brackets. */
  messageId: string;
  /** The Message-ID it replies to, when it is a reply. */
  inReplyTo: string | null;
  raw: Buffer;
}

export interface MailSetOptions {
  count: number;
  seed: number;
  /** Keeps Message-IDs and senders of different parts of one run apart. */
  tag: string;
}

/**
 * `count` messages of 3-30 KB: a tenth carry an attachment, a fifth reply
 * (In-Reply-To and References) to an earlier message of the same set and
 * come from that message's sender; a third have an HTML alternative.
 */
export function makeMailSet(o: MailSetOptions): BenchMessage[] {
  const rnd = seededRandom(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const words = (bytes: number): string => {
    const out: string[] = [];
    let len = 0;
    let line = 0;
    while (len < bytes) {
      const w = pick(WORDS);
      out.push(w);
      len += w.length + 1;
      line += w.length + 1;
      if (line > 70) {
        out.push('\r\n');
        line = 0;
      } else out.push(' ');
    }
    return out.join('');
  };
  const date = new Date().toUTCString();
  const messages: BenchMessage[] = [];
  const senders: string[] = [];
  const subjects: string[] = [];
  for (let i = 0; i < o.count; i++) {
    const messageId = `${o.tag}-${i}@customer.example`;
    const isReply = i > 0 && rnd() < 0.2;
    const parent = isReply ? Math.floor(rnd() * i) : -1;
    const sender = isReply ? senders[parent]! : `Customer ${i} <${o.tag}-c${i}@customer.example>`;
    const subject = isReply
      ? `Re: ${subjects[parent]!.replace(/^Re: /, '')}`
      : `Problem with my ${pick(WORDS)} ${pick(WORDS)} (${i})`;
    senders.push(sender);
    subjects.push(subject);
    const size = 3_000 + Math.floor(rnd() * 27_000);
    const withAttachment = rnd() < 0.1;
    const withHtml = rnd() < 0.33;
    const headers = [
      `From: ${sender}`,
      'To: Support <support@example.com>',
      `Subject: ${subject}`,
      `Date: ${date}`,
      `Message-ID: <${messageId}>`,
      ...(isReply ? [`In-Reply-To: <${messages[parent]!.messageId}>`, `References: <${messages[parent]!.messageId}>`] : []),
      'MIME-Version: 1.0',
    ];
    const boundary = `b-${o.tag}-${i}`;
    // What the headers and MIME structure take, roughly; the text fills the rest.
    const budget = Math.max(600, size - 700);
    let body: string[];
    if (!withAttachment && !withHtml) {
      body = ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', words(budget)];
    } else {
      const attachmentBytes = withAttachment ? Math.floor(budget * 0.6 * 0.75) : 0;
      const textBytes = budget - Math.ceil((attachmentBytes * 4) / 3);
      const text = words(withHtml ? Math.floor(textBytes / 2) : textBytes);
      const textPart = ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', text];
      const alternative = withHtml
        ? [
            `Content-Type: multipart/alternative; boundary="${boundary}-alt"`,
            '',
            `--${boundary}-alt`,
            ...textPart,
            `--${boundary}-alt`,
            'Content-Type: text/html; charset=utf-8',
            'Content-Transfer-Encoding: 8bit',
            '',
            `<html><body><p>${text.replace(/\r\n/g, '</p>\r\n<p>')}</p></body></html>`,
            `--${boundary}-alt--`,
          ]
        : textPart;
      body = withAttachment
        ? [
            `Content-Type: multipart/mixed; boundary="${boundary}"`,
            '',
            `--${boundary}`,
            ...alternative,
            `--${boundary}`,
            `Content-Type: application/pdf; name="report-${i}.pdf"`,
            `Content-Disposition: attachment; filename="report-${i}.pdf"`,
            'Content-Transfer-Encoding: base64',
            '',
            randomBytesSeeded(rnd, attachmentBytes).toString('base64').replace(/.{76}/g, '$&\r\n'),
            `--${boundary}--`,
          ]
        : alternative;
    }
    messages.push({
      messageId,
      inReplyTo: isReply ? messages[parent]!.messageId : null,
      raw: Buffer.from(`${[...headers, ...body].join('\r\n')}\r\n`),
    });
  }
  return messages;
}

function randomBytesSeeded(rnd: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** A single customer mail, small, for the latency runs. */
export function singleMail(messageId: string, from: string, subject: string): Buffer {
  return Buffer.from(
    [
      `From: ${from}`,
      'To: Support <support@example.com>',
      `Subject: ${subject}`,
      `Date: ${new Date().toUTCString()}`,
      `Message-ID: <${messageId}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      `Hello,\r\n\r\n${'my order has not arrived and the tracking page shows nothing. '.repeat(20)}\r\n\r\nRegards`,
      '',
    ].join('\r\n'),
  );
}

/**
 * Writes the messages straight into `user`'s Maildir `cur/` (with their sizes
 * in the file names, as Dovecot's own deliveries have), in order, so UIDs
 * follow the order of `messages`. Dovecot indexes them on first access;
 * APPENDing thousands over IMAP would take longer than the run it prepares.
 */
export function loadMaildir(dovecot: DovecotServer, user: string, messages: readonly BenchMessage[]): void {
  const uid = Number(execFileSync('id', ['-u', 'mail']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'mail']).toString().trim());
  const home = join(dovecot.dir, 'home', user);
  const maildir = join(home, 'Maildir');
  for (const dir of [home, maildir, join(maildir, 'cur'), join(maildir, 'new'), join(maildir, 'tmp')]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, uid, gid);
  }
  const base = Math.floor(Date.now() / 1000) - messages.length;
  const host = randomBytes(4).toString('hex');
  messages.forEach((m, i) => {
    // Dovecot orders new files by name when it assigns UIDs: the time part keeps them in sequence.
    const file = join(maildir, 'cur', `${base + i}.M${i}P${process.pid}.${host},S=${m.raw.length}:2,`);
    writeFileSync(file, m.raw, { mode: 0o600 });
    chownSync(file, uid, gid);
  });
}

// Raw 8-bit header bytes. RFC 6532 allows them as UTF-8 only, but older and
// regional mail programs write subjects and names in their local charset
// (GBK, Shift_JIS, EUC-KR, ISO-8859-x) without RFC 2047 encoded words.
// Read as UTF-8 those bytes become U+FFFD. Here the header section is
// transcoded to UTF-8 before the MIME parser sees it, using the charset the
// message declares for its text, else the one a detector recognises.

import { createRequire } from 'node:module';
import { TextDecoder } from 'node:util';
import type Jschardet from 'jschardet';

const require = createRequire(import.meta.url);
let jschardet: typeof Jschardet | undefined;
/**
 * The detector is needed only for a header with raw 8-bit bytes and no
 * charset, which few mails have; its ES build is some forty modules, which
 * every `ticketd ingest` would load for nothing. Its single CommonJS build is
 * loaded on first use instead.
 */
function detector(): typeof Jschardet {
  jschardet ??= require('jschardet') as typeof Jschardet;
  return jschardet;
}

/** How far into the body the first text part's Content-Type is looked for. */
const BODY_SCAN_BYTES = 64 * 1024;

// The detector is trusted on short header text only for the multi-byte
// charsets, whose byte patterns are distinctive; a single-byte guess on a
// dozen bytes is noise, so it needs more confidence. Below either, the bytes
// are read as windows-1252, which maps every byte and is what an unlabelled
// 8-bit Western header most often is.
const MULTIBYTE_MIN_CONFIDENCE = 0.05;
const SINGLE_BYTE_MIN_CONFIDENCE = 0.5;
const MULTIBYTE = /^(?:gb|big5|shift_jis|euc-|iso-2022-)/;
const FALLBACK_CHARSET = 'windows-1252';

// Names the detector returns that WHATWG TextDecoder knows under another label.
const DECODER_LABELS: Record<string, string> = { cp932: 'shift_jis', cp949: 'euc-kr', maccyrillic: 'x-mac-cyrillic' };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decoder(charset: string, fatal: boolean): TextDecoder | null {
  const label = charset.toLowerCase();
  try {
    return new TextDecoder(DECODER_LABELS[label] ?? label, { fatal });
  } catch {
    return null;
  }
}

function has8bit(bytes: Uint8Array): boolean {
  return bytes.some((byte) => byte >= 0x80);
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    UTF8.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Offset of the empty line that ends the header section (the whole message when there is none). */
function headerSectionEnd(raw: Buffer): number {
  const lf = raw.indexOf('\n\n');
  const crlf = raw.indexOf('\r\n\r\n');
  const ends = [lf < 0 ? -1 : lf + 1, crlf < 0 ? -1 : crlf + 2].filter((at) => at >= 0);
  return ends.length === 0 ? raw.length : Math.min(...ends);
}

/** Physical lines of a buffer, each with its line ending. */
function lines(section: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  while (start < section.length) {
    const eol = section.indexOf(0x0a, start);
    const end = eol < 0 ? section.length : eol + 1;
    out.push(section.subarray(start, end));
    start = end;
  }
  return out;
}

function charsetParam(contentType: string): string | null {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1]?.toLowerCase() ?? null;
}

/**
 * The charset the message declares for its text: the top-level Content-Type's,
 * else that of the first text part (multipart mail labels only its parts).
 * The part's Content-Type is found by its line alone, not by walking the MIME
 * structure: any charset the sender names for text is a better guess than none.
 */
export function declaredCharset(raw: Buffer): string | null {
  const end = headerSectionEnd(raw);
  const unfolded = (text: string) => text.replace(/\r?\n[ \t]+/g, ' ');
  const top = /^content-type:(.*)$/im.exec(unfolded(raw.subarray(0, end).toString('latin1')))?.[1];
  if (top !== undefined && /^\s*text\//i.test(top)) return charsetParam(top);
  const body = unfolded(raw.subarray(end, end + BODY_SCAN_BYTES).toString('latin1'));
  const part = /^content-type:[ \t]*(text\/.*)$/im.exec(body)?.[1];
  return part === undefined ? null : charsetParam(part);
}

/** What the detector makes of the bytes, when it is sure enough for text this short. */
export function detectedCharset(bytes: Buffer): string | null {
  for (const guess of detector().detectAll(bytes)) {
    const name = guess.encoding?.toLowerCase();
    if (!name || name === 'ascii' || name === 'utf-8') continue;
    const needed = MULTIBYTE.test(DECODER_LABELS[name] ?? name) ? MULTIBYTE_MIN_CONFIDENCE : SINGLE_BYTE_MIN_CONFIDENCE;
    if (guess.confidence >= needed && decoder(name, true) !== null) return name;
  }
  return null;
}

function decodesCleanly(charset: string, chunks: Buffer[]): boolean {
  const strict = decoder(charset, true);
  if (strict === null) return false;
  try {
    for (const chunk of chunks) strict.decode(chunk);
    return true;
  } catch {
    return false;
  }
}

/**
 * The charset that raw 8-bit header bytes are read in: the declared one when
 * it decodes them without error, else the detected one, else windows-1252.
 * A declared UTF-8 or US-ASCII says nothing here: the bytes were not UTF-8.
 */
export function headerCharset(raw: Buffer, chunks: Buffer[]): string {
  const declared = declaredCharset(raw);
  if (declared !== null && !/^(?:utf-?8|us-ascii|ascii)$/.test(declared) && decodesCleanly(declared, chunks)) return declared;
  const detected = detectedCharset(Buffer.concat(chunks));
  if (detected !== null && decodesCleanly(detected, chunks)) return detected;
  return FALLBACK_CHARSET;
}

// A Q-encoded word (RFC 2047 section 4.2). Some mailers put raw 8-bit bytes
// inside one instead of =XX escapes; those bytes are in the word's own charset.
const Q_WORD = /(=\?[^?\s]+\?q\?[^?]*\?=)/i;

/** A header line split into the text outside Q-encoded words (even indexes) and the words (odd ones), as latin1 strings. */
function segments(line: Buffer): string[] {
  return line.toString('latin1').split(Q_WORD);
}

/** The bytes of a line outside its encoded words. */
function outsideWords(line: Buffer): Buffer {
  return Buffer.from(
    segments(line)
      .filter((_, i) => i % 2 === 0)
      .join(''),
    'latin1',
  );
}

/** A line re-encoded: text outside encoded words from `charset` to UTF-8, raw bytes inside Q words escaped as =XX. */
function convertLine(line: Buffer, charset: TextDecoder): Buffer {
  return Buffer.concat(
    segments(line).map((part, i) =>
      i % 2 === 1
        ? Buffer.from(
            part.replace(/[\x80-\xff]/g, (c) => `=${c.charCodeAt(0).toString(16).toUpperCase()}`),
            'latin1',
          )
        : Buffer.from(charset.decode(Buffer.from(part, 'latin1')), 'utf8'),
    ),
  );
}

/**
 * The message with its header section in UTF-8: lines holding 8-bit bytes
 * that are not UTF-8 are decoded with `headerCharset` and re-encoded. The body
 * is untouched, and a message whose headers need nothing is returned as is.
 * Only the parser's input changes; the message is stored and hashed as received.
 */
export function headersAsUtf8(raw: Buffer): Buffer {
  const end = headerSectionEnd(raw);
  const section = raw.subarray(0, end);
  if (!has8bit(section)) return raw;
  const headerLines = lines(section);
  const foreign = headerLines.filter((line) => has8bit(line) && !isUtf8(line));
  if (foreign.length === 0) return raw;
  const samples = foreign.map(outsideWords).filter(has8bit);
  const charset =
    samples.length === 0
      ? new TextDecoder(FALLBACK_CHARSET)
      : (decoder(headerCharset(raw, samples), false) ?? new TextDecoder(FALLBACK_CHARSET));
  const converted = headerLines.map((line) => (foreign.includes(line) ? convertLine(line, charset) : line));
  return Buffer.concat([...converted, raw.subarray(end)]);
}

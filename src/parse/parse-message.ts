import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable, addAbortSignal } from 'node:stream';
import {
  MailParser,
  type AttachmentStream,
  type HeaderLines,
  type Headers,
  type MessageText,
  type StructuredHeader,
} from 'mailparser';
import { withDeadline } from '../core/deadline.js';
import { parseMessageIds } from '../core/header-fields.js';
import type { AttachmentRecord, ParsedMessage, ReportParts } from '../core/types.js';
import { storeAttachment, type AttachmentBudget } from './attachment-store.js';
import { headersAsUtf8 } from './header-charset.js';
import { addressList, rawHeaderMap, senderAddress } from './header-values.js';
import { htmlToText } from './html-text.js';

export const PARSE_FAILED = 'parse-failed';
export const PARSE_TIMEOUT = 'parse-timeout';

export type ParseVerdict = { ok: true; message: ParsedMessage } | { ok: false; reason: string };

export interface ParseOptions {
  /** Attachments go to `<attachmentsDir>/<sha256 of raw>/<index>-<safe name>`. */
  attachmentsDir: string;
  /** Total bytes of attachments written to disk for one message. */
  maxAttachmentBytes: number;
  /** Attachment files written for one message (default 100); later parts are listed but not written. */
  maxAttachmentFiles?: number;
  /** Longest body text kept, in characters (default 200 000). */
  maxTextChars?: number;
  /** Wall-clock limit for parsing one message (default 30 s). */
  timeoutMs?: number;
}

const DEFAULT_MAX_TEXT_CHARS = 200_000;
export const DEFAULT_PARSE_TIMEOUT_MS = 30_000;
// A message with thousands of parts is a bomb, not a customer's mail.
const DEFAULT_MAX_ATTACHMENT_FILES = 100;
const REPORT_CAPTURE_BYTES = 64 * 1024;
const INPUT_SLICE_BYTES = 64 * 1024;

const DELIVERY_STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const ORIGINAL_MESSAGE_TYPES = new Set(['message/rfc822', 'message/global']);
const ORIGINAL_HEADERS_TYPES = new Set(['text/rfc822-headers', 'message/global-headers']);

/**
 * Parses one raw message, streaming its attachments to disk under a per-message
 * byte cap. Never throws: a message mailparser cannot handle, a failed write or
 * a parse that runs past `timeoutMs` all come back as `{ ok: false, reason }`.
 */
export async function parseMessage(raw: Buffer, opts: ParseOptions): Promise<ParseVerdict> {
  if (raw.length === 0) return { ok: false, reason: `${PARSE_FAILED}: empty message` };
  const abort = new AbortController();
  const work = parse(raw, opts, abort.signal).then(
    (message): ParseVerdict => ({ ok: true, message }),
    (err: unknown): ParseVerdict => ({ ok: false, reason: `${PARSE_FAILED}: ${describe(err)}` }),
  );
  try {
    return await withDeadline(
      work,
      opts.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS,
      (): ParseVerdict => ({ ok: false, reason: PARSE_TIMEOUT }),
    );
  } finally {
    // Stops attachment writes still running after a timeout, so no file handle outlives the call.
    abort.abort();
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Collected {
  headers: Headers;
  headerLines: HeaderLines;
  text: MessageText | null;
  attachments: AttachmentRecord[];
  deliveryStatus: string | null;
  originalHeaders: string | null;
}

// async so that anything thrown while setting up also ends as a rejected promise.
async function parse(raw: Buffer, opts: ParseOptions, signal: AbortSignal): Promise<ParsedMessage> {
  const sha256 = createHash('sha256').update(raw).digest('hex');
  const parser = new MailParser({
    // Report parts come out as attachments so their text can be read as-is,
    // and an enclosed original message stays one attachment instead of being
    // merged into the body.
    keepDeliveryStatus: true,
    ignoreEmbedded: true,
    // HTML is converted here with our own options, and textAsHtml is not used.
    skipHtmlToText: true,
    skipTextToHtml: true,
    checksumAlgo: false,
  });
  signal.addEventListener('abort', () => parser.destroy(), { once: true });

  return new Promise<ParsedMessage>((resolve, reject) => {
    const collected: Collected = {
      headers: new Map(),
      headerLines: [],
      text: null,
      attachments: [],
      deliveryStatus: null,
      originalHeaders: null,
    };
    const budget: AttachmentBudget = { remaining: opts.maxAttachmentBytes };
    const noRoom: AttachmentBudget = { remaining: 0 };
    const maxFiles = opts.maxAttachmentFiles ?? DEFAULT_MAX_ATTACHMENT_FILES;
    const dir = path.join(opts.attachmentsDir, sha256);
    const stored: Promise<void>[] = [];
    let isReport = false;

    parser.on('headers', (headers) => {
      collected.headers = headers;
      isReport = topContentType(headers).value === 'multipart/report';
    });
    parser.on('headerLines', (lines) => {
      collected.headerLines = lines;
    });
    parser.on('data', (data) => {
      if (data.type === 'text') {
        collected.text = data;
        return;
      }
      const index = stored.length;
      stored.push(
        keepAttachment(data, { dir, index, isReport, budget: index < maxFiles ? budget : noRoom, signal, collected }).catch(
          (err: unknown) => {
            reject(err);
          },
        ),
      );
    });
    parser.on('error', reject);
    parser.on('end', () => {
      Promise.all(stored)
        .then(() => resolve(assemble(raw, sha256, collected, opts)))
        .catch(reject);
    });
    // mailsplit hands a single large write on as one chunk, which would decode
    // a whole attachment in memory at once; slices keep the decoding streamed.
    // Raw 8-bit headers in a legacy charset reach the parser as UTF-8.
    Readable.from(slices(headersAsUtf8(raw))).pipe(parser);
  });
}

function* slices(raw: Buffer): Generator<Buffer> {
  for (let offset = 0; offset < raw.length; offset += INPUT_SLICE_BYTES) {
    yield raw.subarray(offset, offset + INPUT_SLICE_BYTES);
  }
}

async function keepAttachment(
  attachment: AttachmentStream,
  ctx: { dir: string; index: number; isReport: boolean; budget: AttachmentBudget; signal: AbortSignal; collected: Collected },
): Promise<void> {
  const type = attachment.contentType.toLowerCase();
  const reportPart =
    ctx.isReport && (DELIVERY_STATUS_TYPES.has(type) || ORIGINAL_MESSAGE_TYPES.has(type) || ORIGINAL_HEADERS_TYPES.has(type));
  try {
    const { record, captured } = await storeAttachment(
      addAbortSignal(ctx.signal, attachment.content),
      { dir: ctx.dir, index: ctx.index, filename: attachment.filename, contentType: type },
      ctx.budget,
      reportPart ? REPORT_CAPTURE_BYTES : 0,
    );
    ctx.collected.attachments[ctx.index] = record;
    if (captured === null) return;
    const text = captured.toString('utf8');
    if (DELIVERY_STATUS_TYPES.has(type)) {
      ctx.collected.deliveryStatus ??= text;
    } else {
      ctx.collected.originalHeaders ??= ORIGINAL_MESSAGE_TYPES.has(type) ? headerBlock(text) : text;
    }
  } finally {
    // mailparser holds the rest of the message until every attachment is released.
    attachment.release?.();
  }
}

/** The header section of a message: everything before the first empty line. */
function headerBlock(message: string): string {
  const end = message.search(/\r?\n\r?\n/);
  return end < 0 ? message : message.slice(0, end);
}

function topContentType(headers: Headers): StructuredHeader {
  const value = headers.get('content-type') as StructuredHeader | undefined;
  return { value: (value?.value ?? 'text/plain').toLowerCase(), params: value?.params ?? {} };
}

function assemble(raw: Buffer, sha256: string, collected: Collected, opts: ParseOptions): ParsedMessage {
  const { headers } = collected;
  const rawHeaders = rawHeaderMap(collected.headerLines);
  const first = (name: string): string | undefined => rawHeaders.get(name)?.[0];
  const contentType = topContentType(headers);
  const body = bodyText(collected.text, opts.maxTextChars ?? DEFAULT_MAX_TEXT_CHARS);
  const subject = headers.get('subject');

  return {
    messageId: parseMessageIds(first('message-id') ?? '')[0] ?? null,
    inReplyTo: (rawHeaders.get('in-reply-to') ?? []).flatMap(parseMessageIds),
    references: (rawHeaders.get('references') ?? []).flatMap(parseMessageIds),
    subject: typeof subject === 'string' ? subject : '',
    from: senderAddress(rawHeaders),
    replyTo: addressList(headers.get('reply-to')),
    to: addressList(headers.get('to')),
    cc: addressList(headers.get('cc')),
    returnPath: returnPath(first('return-path')),
    date: parseDate(first('date')),
    headers: rawHeaders,
    text: body.text,
    textFromHtml: body.fromHtml,
    attachments: collected.attachments.filter((record) => record !== undefined),
    // Content-Language says what the customer wrote in; some mail programs
    // only send Accept-Language (what the reader prefers, best first).
    language: firstLanguageTag(first('content-language')) ?? firstLanguageTag(first('accept-language')),
    contentType: contentType.value,
    report: reportParts(contentType, collected),
    size: raw.length,
    sha256,
  };
}

function reportParts(contentType: StructuredHeader, collected: Collected): ReportParts | null {
  if (contentType.value !== 'multipart/report') return null;
  return {
    reportType: (contentType.params['report-type'] ?? '').toLowerCase(),
    deliveryStatus: collected.deliveryStatus,
    originalHeaders: collected.originalHeaders,
  };
}

/** '' for the null sender `<>`, the bare lower-cased address otherwise, null without the header. */
function returnPath(value: string | undefined): string | null {
  if (value === undefined) return null;
  const bracketed = /<([^<>]*)>/.exec(value);
  return (bracketed ? (bracketed[1] ?? '') : value).trim().toLowerCase();
}

function parseDate(value: string | undefined): Date | null {
  if (value === undefined) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

function bodyText(content: MessageText | null, maxChars: number): { text: string; fromHtml: boolean } {
  const plain = content?.text ?? '';
  if (plain.trim() === '' && content?.html) {
    return { text: cap(htmlToText(content.html).trim(), maxChars), fromHtml: true };
  }
  return { text: cap(plain, maxChars), fromHtml: false };
}

function cap(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  // Cutting between the halves of a surrogate pair would leave invalid UTF-16.
  const end = /[\uD800-\uDBFF]/.test(text.charAt(maxChars - 1)) ? maxChars - 1 : maxChars;
  return text.slice(0, end);
}

/** The first tag of a Content-Language or Accept-Language value, lower-cased, without a `;q=` weight. */
function firstLanguageTag(value: string | undefined): string | null {
  const tag = (value ?? '').split(',')[0]?.split(';')[0]?.trim().toLowerCase();
  return tag && /^[a-z]{1,8}(-[a-z0-9]{1,8})*$/.test(tag) ? tag : null;
}

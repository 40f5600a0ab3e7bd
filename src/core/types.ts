// Records that flow between the pipeline stages. Each stage takes one of
// these and returns a verdict; none of them throws for a bad message.

export interface Address {
  /** Lower-cased mailbox address, e.g. `jane@example.com`. */
  address: string;
  /** Display name as decoded from the header, may be empty. */
  name: string;
}

export interface AttachmentRecord {
  filename: string;
  contentType: string;
  /** Bytes written to disk (may be less than the part when `truncated`). */
  size: number;
  sha256: string;
  /** Absolute path of the stored file, or null when it was not written (over the cap). */
  path: string | null;
  truncated: boolean;
}

/** The parts of a multipart/report (RFC 3464/3462) kept for classification. */
export interface ReportParts {
  /** `report-type` parameter of the top-level multipart/report, lower-cased. */
  reportType: string;
  /** Text of the message/delivery-status part (first 64 KiB). */
  deliveryStatus: string | null;
  /** Header block of the enclosed message/rfc822 or text/rfc822-headers part (first 64 KiB). */
  originalHeaders: string | null;
}

export interface ParsedMessage {
  /** Message-ID without angle brackets, or null when the message has none. */
  messageId: string | null;
  /** Message-IDs (without brackets) named in In-Reply-To. */
  inReplyTo: string[];
  /** Message-IDs (without brackets) named in References. */
  references: string[];
  subject: string;
  from: Address | null;
  replyTo: Address[];
  to: Address[];
  cc: Address[];
  /** Envelope sender from Return-Path: '' for the null sender `<>`, null when absent. */
  returnPath: string | null;
  date: Date | null;
  /** Header name (lower-case) to its unfolded values, in order. */
  headers: Map<string, string[]>;
  /** Plain text body: the text part, or the HTML part converted to text. */
  text: string;
  /** True when the text came from converting HTML. */
  textFromHtml: boolean;
  attachments: AttachmentRecord[];
  /** Primary language tag from Content-Language, lower-cased, or null. */
  language: string | null;
  /** Top-level content type, lower-cased, without parameters. */
  contentType: string;
  report: ReportParts | null;
  /** Size and SHA-256 (hex) of the raw message as received. */
  size: number;
  sha256: string;
}

export type MessageKind = 'request' | 'bounce' | 'auto-reply' | 'out-of-office';

export interface BounceInfo {
  /** Message-IDs (without brackets) of the message that bounced. */
  originalMessageIds: string[];
  recipients: { address: string; action: string; status: string; diagnostic: string }[];
}

/** What the classify stage decided about a message. */
export interface Classification {
  kind: MessageKind;
  /** False when RFC 3834 (or our own loop rules) forbid an automatic reply. */
  mayAutoReply: boolean;
  /** Stable reason when `mayAutoReply` is false, e.g. `auto-submitted`, `precedence-bulk`. */
  suppressReason: string | null;
  bounce: BounceInfo | null;
}

/**
 * Where an automatic reply to a message would go (RFC 3834 section 4), or why
 * there is nobody to send one to. Decided in the pipeline, recorded by the store.
 */
export type AutoReplyTarget =
  | { ok: true; address: string; name: string; source: 'return-path' | 'from' }
  | { ok: false; reason: string; address?: string };

/** What a trusted receiving MTA's Authentication-Results (RFC 8601) said about a message. */
export interface SenderAuthentication {
  /** The authserv-id of the field the result was read from ('' for a field without one). */
  authservId: string;
  /** The DMARC result, lower-case: pass, fail, none, temperror, permerror, ... */
  dmarc: string;
  /** The RFC5322.From domain the result is about, when the field names it. */
  headerFrom: string | null;
}

export type TicketStatus = 'open' | 'pending' | 'on-hold' | 'resolved' | 'closed';
export const TICKET_STATUSES: readonly TicketStatus[] = ['open', 'pending', 'on-hold', 'resolved', 'closed'];

/** The name of a vetted answer (templates/answers/NAME.text.hbs): what staff type after `#answer` or `--answer`. */
export const ANSWER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Where a raw message came from; the key that makes intake idempotent. */
export type MessageOrigin =
  | {
      via: 'imap';
      mailbox: string;
      uidValidity: number;
      uid: number;
      /**
       * Taken ahead of older UIDs still waiting in the folder (mail that arrived
       * during a backlog): its receipt does not move the mailbox's cursor, which
       * promises that every UID up to it was taken.
       */
      ahead?: true;
    }
  | { via: 'pipe' | 'lmtp' | 'retry'; mailbox: string };

/** A mail to queue; rendered before the transaction commits, composed to MIME by the outbox worker. */
export interface OutboundDraft {
  kind: string;
  from: Address;
  to: Address[];
  subject: string;
  text: string;
  html: string | null;
  messageId: string;
  inReplyTo: string | null;
  references: string[];
  /** Extra headers such as Auto-Submitted. */
  headers: Record<string, string>;
}

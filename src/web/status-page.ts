import { DateTime } from 'luxon';
import { TICKET_STATUSES, type TicketStatus } from '../core/types.js';
import { RATING_COMMENT_CHARS, RATING_SCORES, takesRating } from '../store/ratings.js';
import type { PublicEvent, PublicMessage, StatusPageData, TimelineHead } from './status-page-store.js';

/** What the SLA engine promises next for a ticket (see `SlaEngine.promise`). */
export interface SlaPromise {
  target: 'first-response' | 'resolution';
  due: Date;
}

/** A moment as the page shows it: words for people, ISO for `<time datetime>`. */
export interface ShownTime {
  text: string;
  iso: string;
}

export type TimelineEntry =
  | { kind: 'received'; at: ShownTime }
  | { kind: 'acknowledged'; at: ShownTime }
  | { kind: 'status'; at: ShownTime; newStatus: TicketStatus; reason: string }
  | { kind: 'reopened'; at: ShownTime }
  | { kind: 'handoff'; at: ShownTime; team: string }
  | {
      kind: 'message';
      at: ShownTime;
      fromUs: boolean;
      fromRequester: boolean;
      /** The sender's address when it is neither us nor the requester. */
      from: string;
      text: string;
      /** True when the text was cut at MAX_MESSAGE_CHARS. */
      shortened: boolean;
      /** At most MAX_ATTACHMENT_NAMES names, then "… (+N)" for the rest. */
      attachments: string[];
    };

/**
 * Which part of a long history the page shows. Page 1 holds the oldest
 * entries; without a page asked for, the page shows the newest. The links are
 * relative (`?page=N`), so the view never carries the token; '' when there
 * is no such page.
 */
export interface HistoryPage {
  /** More than one page: the page shows where it is and links on. */
  paged: boolean;
  number: number;
  count: number;
  earlierHref: string;
  laterHref: string;
}

/**
 * What the status page shows, as data: templates turn the codes (status,
 * promise target, timeline kinds) into words in their own language. Every
 * string that came from an email is plain text here; templates escape it.
 */
export interface StatusView {
  ref: string;
  subject: string;
  requesterName: string;
  receivedAt: ShownTime;
  status: TicketStatus;
  /** The public reason while on hold, '' otherwise. */
  onHoldReason: string;
  /** Open requests of the same mailbox ahead of this one; null when the ticket is not waiting in the queue. */
  queue: { ahead: number } | null;
  promise: { target: SlaPromise['target']; due: ShownTime } | null;
  /** Whether there is anything to say under "what happens next". */
  hasNextSteps: boolean;
  timeline: TimelineEntry[];
  history: HistoryPage;
  /** Where replies go; the page tells the customer to quote the reference. */
  mailboxAddress: string;
  replyMailto: string;
  shownAt: ShownTime;
  /** The rating form, on a resolved or closed ticket; null otherwise. */
  rating: RatingView | null;
}

/**
 * The rating form: it posts to the page's own address (so the view never
 * carries the link) with `csrf`, a token bound to the status link.
 */
export interface RatingView {
  csrf: string;
  /** 1 to 5: the one the mail's link chose checked, else the one given before. */
  scores: { value: number; checked: boolean }[];
  /** The score a link from the mail chose (`?score=N`), not yet sent; null when none. */
  chosen: number | null;
  /** The comment given before, to edit; '' when none. */
  comment: string;
  maxCommentChars: number;
  /** The rating given before; null when none. */
  current: { score: number; comment: string; at: ShownTime } | null;
}

export interface StatusViewInput {
  data: StatusPageData;
  promise: SlaPromise | null;
  mailboxAddress: string;
  /** The configured public URL: links to status pages found in message text are cut down to it. */
  publicUrl: string;
  /** Locale for dates, from the language of the template used. */
  locale: string;
  now: Date;
  /** The page of the history `data` holds (see pickHistoryPage); a single page when left out. */
  page?: { number: number; count: number };
  /** The rating form's CSRF token for this status link; no form when left out. */
  formToken?: string;
  /** A score the link chose (the mail's one-click links): checked in the form, stored only when the form is sent. */
  chosenScore?: number | null;
}

/** Longer messages are cut; the full text stays in the ticket. */
export const MAX_MESSAGE_CHARS = 20_000;
/**
 * How much of a stored body is read for one message: more than is shown,
 * because quoted history is removed before the text is cut.
 */
export const MESSAGE_READ_CHARS = 4 * MAX_MESSAGE_CHARS;
/** History entries on one page. With MAX_MESSAGE_CHARS, a page carries at most 200,000 characters of mail text (about 1.2 MB once escaped, at worst). */
export const HISTORY_PAGE_SIZE = 10;
/** One-line fields from mail (subject, names, reasons, file names) are cut here. */
export const MAX_LINE_CHARS = 300;
/** File names listed per message; the rest are counted. */
export const MAX_ATTACHMENT_NAMES = 20;

/** Tickets in these states are waiting in the queue the acknowledgement counted. */
const QUEUED: ReadonlySet<TicketStatus> = new Set(['open', 'on-hold']);

// C0 controls other than tab and newline, and DEL: never meaningful on a page.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is this expression's job
const CONTROL_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F]/g;

const QUOTED_LINE = /^\s*>/;
const ATTRIBUTION = /^\s*(?:On\s.*\swrote|Am\s.*\sschrieb[^:]*)\s*:\s*$/i;
const ATTRIBUTION_START = /^\s*(?:On|Am)\s/i;
const ORIGINAL_MESSAGE = /^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht)\s*-{2,}\s*$/i;
const SIGNATURE = /^-- ?$/;
const OUTLOOK_RULE = /^\s*_{10,}\s*$/;
const OUTLOOK_HEADER = /^\s*(?:From|Von):\s/i;

/**
 * The new part of a reply: drops `>` lines and cuts at the first attribution
 * line ("On … wrote:", also when wrapped onto two lines), an
 * "-----Original Message-----" or Outlook separator, or a "-- " signature
 * delimiter (our own replies carry the status link below one).
 */
export function stripQuotedHistory(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const next = lines[i + 1] ?? '';
    const cut =
      ATTRIBUTION.test(line) ||
      (ATTRIBUTION_START.test(line) && ATTRIBUTION.test(`${line} ${next}`)) ||
      ORIGINAL_MESSAGE.test(line) ||
      SIGNATURE.test(line) ||
      (OUTLOOK_RULE.test(line) && OUTLOOK_HEADER.test(next));
    if (cut) break;
    if (!QUOTED_LINE.test(line)) kept.push(line);
  }
  return kept
    .join('\n')
    .replace(/\n[ \t]*(\n[ \t]*){2,}/g, '\n\n')
    .trim();
}

function statusLinkPattern(publicUrl: string): RegExp {
  return new RegExp(`${publicUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/t/[A-Za-z0-9_-]+`, 'g');
}

function plainText(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(CONTROL_CHARS, '');
}

function oneLine(text: string): string {
  const line = plainText(text.slice(0, 4 * MAX_LINE_CHARS))
    .replace(/\s+/g, ' ')
    .trim();
  return line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS - 1)}…` : line;
}

function shownTime(at: number | Date, locale: string): ShownTime {
  const dt = DateTime.fromMillis(new Date(at).getTime(), { zone: 'utc' });
  return { text: `${dt.setLocale(locale).toLocaleString(DateTime.DATETIME_MED)} UTC`, iso: dt.toISO() ?? '' };
}

function isStatus(value: unknown): value is TicketStatus {
  return typeof value === 'string' && (TICKET_STATUSES as readonly string[]).includes(value);
}

function eventEntry(e: PublicEvent, locale: string): TimelineEntry | null {
  const at = shownTime(e.at, locale);
  switch (e.type) {
    case 'received':
      return { kind: 'received', at };
    case 'acknowledged':
      return { kind: 'acknowledged', at };
    case 'reopened':
      return { kind: 'reopened', at };
    case 'status': {
      const status = e.detail.status;
      if (!isStatus(status)) return null;
      const reason = status === 'on-hold' && typeof e.detail.reason === 'string' ? oneLine(e.detail.reason) : '';
      return { kind: 'status', at, newStatus: status, reason };
    }
    case 'handoff':
      return typeof e.detail.team === 'string' ? { kind: 'handoff', at, team: oneLine(e.detail.team) } : null;
    default:
      return null;
  }
}

function messageEntry(m: PublicMessage, input: StatusViewInput): TimelineEntry {
  const t = input.data.ticket;
  const fromUs = m.direction === 'out';
  const fromRequester = !fromUs && (m.from === t.requester || m.from === t.replyTo);
  let text = stripQuotedHistory(plainText(m.text.slice(0, MESSAGE_READ_CHARS))).replace(
    statusLinkPattern(input.publicUrl),
    `${input.publicUrl}/t/…`,
  );
  const shortened = text.length > MAX_MESSAGE_CHARS || m.truncated === true || m.text.length > MESSAGE_READ_CHARS;
  if (text.length > MAX_MESSAGE_CHARS) text = text.slice(0, MAX_MESSAGE_CHARS);
  return {
    kind: 'message',
    at: shownTime(m.at, input.locale),
    fromUs,
    fromRequester,
    from: fromUs || fromRequester ? '' : m.from,
    text,
    shortened,
    attachments: [
      ...m.attachmentNames.slice(0, MAX_ATTACHMENT_NAMES).map(oneLine),
      // Language-neutral, so every page template shows it as it is.
      ...(m.attachmentNames.length > MAX_ATTACHMENT_NAMES ? [`… (+${m.attachmentNames.length - MAX_ATTACHMENT_NAMES})`] : []),
    ],
  };
}

// At the same instant the request is received, then shown, then acknowledged.
function rank(kind: string): number {
  return kind === 'received' ? 0 : kind === 'message' ? 1 : 2;
}

/** The history's order: by time; at one instant received, then messages, then other events. */
function byTimeline(a: { at: number; kind: string; seq: number }, b: { at: number; kind: string; seq: number }): number {
  return a.at - b.at || rank(a.kind) - rank(b.kind) || a.seq - b.seq;
}

/**
 * One page of a ticket's history, in timeline order. `requested` is the
 * page asked for (1 = oldest); null, or a page past the end, gives the newest.
 */
export function pickHistoryPage(
  heads: TimelineHead[],
  requested: number | null,
): { heads: TimelineHead[]; number: number; count: number } {
  const sorted = [...heads].sort((a, b) =>
    byTimeline({ at: a.at, kind: a.type, seq: a.id }, { at: b.at, kind: b.type, seq: b.id }),
  );
  const count = Math.max(1, Math.ceil(sorted.length / HISTORY_PAGE_SIZE));
  const number = requested === null || requested > count ? count : Math.max(1, requested);
  return { heads: sorted.slice((number - 1) * HISTORY_PAGE_SIZE, number * HISTORY_PAGE_SIZE), number, count };
}

/**
 * Drops a status entry that repeats the status (and reason) the customer was
 * last shown: a change to the same status tells them nothing. Databases
 * written before such changes were refused hold these repeats.
 */
function newsToCustomer(): (entry: TimelineEntry) => boolean {
  let shown: string | null = null;
  return (entry) => {
    if (entry.kind !== 'status' && entry.kind !== 'reopened') return true;
    const now = entry.kind === 'status' ? `${entry.newStatus}\n${entry.reason}` : 'open\n';
    const repeat = entry.kind === 'status' && now === shown;
    shown = now;
    return !repeat;
  };
}

export function statusView(input: StatusViewInput): StatusView {
  const { ticket, messages, events, queuePosition } = input.data;
  const timeline = [
    ...events.flatMap((e) => {
      const entry = eventEntry(e, input.locale);
      return entry ? [{ entry, at: e.at, kind: entry.kind, seq: e.id }] : [];
    }),
    ...messages.map((m) => ({ entry: messageEntry(m, input), at: m.at, kind: 'message', seq: m.id })),
  ]
    .sort(byTimeline)
    .map((x) => x.entry)
    .filter(newsToCustomer());
  const page = input.page ?? { number: 1, count: 1 };
  const history: HistoryPage = {
    paged: page.count > 1,
    number: page.number,
    count: page.count,
    earlierHref: page.number > 1 ? `?page=${page.number - 1}` : '',
    laterHref: page.number < page.count ? `?page=${page.number + 1}` : '',
  };
  const queue = QUEUED.has(ticket.status) ? { ahead: queuePosition } : null;
  const promise = input.promise ? { target: input.promise.target, due: shownTime(input.promise.due, input.locale) } : null;
  return {
    ref: ticket.ref,
    subject: oneLine(ticket.subject),
    requesterName: oneLine(ticket.requesterName),
    receivedAt: shownTime(ticket.createdAt, input.locale),
    status: ticket.status,
    onHoldReason: ticket.status === 'on-hold' ? oneLine(ticket.onHoldReason ?? '') : '',
    queue,
    promise,
    hasNextSteps: queue !== null || promise !== null,
    timeline,
    history,
    mailboxAddress: input.mailboxAddress,
    replyMailto: `mailto:${input.mailboxAddress}?subject=${encodeURIComponent(`[${ticket.ref}]`)}`,
    shownAt: shownTime(input.now, input.locale),
    rating: ratingView(input),
  };
}

function ratingView(input: StatusViewInput): RatingView | null {
  if (input.formToken === undefined || !takesRating(input.data.ticket.status)) return null;
  const given = input.data.rating ?? null;
  const chosen = input.chosenScore ?? null;
  return {
    csrf: input.formToken,
    scores: RATING_SCORES.map((value) => ({ value, checked: (chosen ?? given?.score) === value })),
    chosen,
    comment: given ? plainText(given.comment) : '',
    maxCommentChars: RATING_COMMENT_CHARS,
    current: given ? { score: given.score, comment: plainText(given.comment), at: shownTime(given.at, input.locale) } : null,
  };
}

/**
 * Views that together take every branch a status template can have; the
 * page loader renders each template with all of them, so a misspelt
 * variable is refused at load rather than failing in front of a customer.
 */
export function sampleStatusViews(): StatusView[] {
  const at = shownTime(Date.UTC(2025, 2, 3, 9, 41), 'en');
  const full: StatusView = {
    ref: 'ACME-7K3QH9',
    subject: 'Printer on the 3rd floor keeps jamming',
    requesterName: 'Jane Doe',
    receivedAt: at,
    status: 'on-hold',
    onHoldReason: 'waiting for a spare part',
    queue: { ahead: 12 },
    promise: { target: 'first-response', due: at },
    hasNextSteps: true,
    timeline: [
      { kind: 'received', at },
      {
        kind: 'message',
        at,
        fromUs: false,
        fromRequester: true,
        from: '',
        text: 'It jams.',
        shortened: true,
        attachments: ['jam.jpg'],
      },
      { kind: 'acknowledged', at },
      { kind: 'handoff', at, team: 'Hardware' },
      {
        kind: 'message',
        at,
        fromUs: true,
        fromRequester: false,
        from: '',
        text: 'We ordered a roller.',
        shortened: false,
        attachments: [],
      },
      {
        kind: 'message',
        at,
        fromUs: false,
        fromRequester: false,
        from: 'colleague@example.com',
        text: '',
        shortened: false,
        attachments: [],
      },
      { kind: 'status', at, newStatus: 'on-hold', reason: 'waiting for a spare part' },
      { kind: 'reopened', at },
    ],
    history: { paged: true, number: 2, count: 3, earlierHref: '?page=1', laterHref: '?page=3' },
    mailboxAddress: 'support@example.com',
    replyMailto: 'mailto:support@example.com?subject=%5BACME-7K3QH9%5D',
    shownAt: at,
    rating: {
      csrf: 'sample-token',
      scores: RATING_SCORES.map((value) => ({ value, checked: value === 4 })),
      chosen: null,
      comment: 'Quick and friendly.',
      maxCommentChars: RATING_COMMENT_CHARS,
      current: { score: 4, comment: 'Quick and friendly.', at },
    },
  };
  const perStatus = TICKET_STATUSES.map(
    (status): StatusView => ({
      ...full,
      status,
      timeline: [
        ...full.timeline,
        ...TICKET_STATUSES.map((s): TimelineEntry => ({ kind: 'status', at, newStatus: s, reason: '' })),
      ],
    }),
  );
  const sparse: StatusView = {
    ...full,
    subject: '',
    requesterName: '',
    status: 'pending',
    onHoldReason: '',
    queue: { ahead: 0 },
    promise: { target: 'resolution', due: at },
    timeline: [],
    history: { paged: false, number: 1, count: 1, earlierHref: '', laterHref: '' },
  };
  const bare: StatusView = { ...sparse, queue: null, promise: null, hasNextSteps: false, rating: null };
  const firstRating: StatusView = {
    ...full,
    status: 'resolved',
    rating: { ...full.rating!, scores: RATING_SCORES.map((value) => ({ value, checked: false })), comment: '', current: null },
  };
  const chosenByLink: StatusView = {
    ...firstRating,
    rating: { ...firstRating.rating!, scores: RATING_SCORES.map((value) => ({ value, checked: value === 5 })), chosen: 5 },
  };
  return [full, ...perStatus, sparse, bare, firstRating, chosenByLink];
}

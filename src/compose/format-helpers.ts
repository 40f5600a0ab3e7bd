// The helpers templates format values with: durations, instants and shares
// arrive as numbers and ISO strings, and become words only here, in the
// language of the template being rendered and the mailbox's time zone. Both
// the mail templates and the status page register these, so a German
// template never shows an English date.

import type Handlebars from 'handlebars';
import { DateTime } from 'luxon';
import { durationParts } from '../core/duration.js';

type Env = typeof Handlebars;

/** What a render passes as handlebars `data`, read by the helpers (not by templates). */
export interface FormatData {
  /** BCP 47 tag of the template's language, e.g. `de` or `en`. */
  locale: string;
  /** IANA zone the reader's times are shown in, e.g. `Europe/Berlin`. */
  timeZone: string;
}

/** Helper names and how many values each takes; the template checkers use this. */
export const FORMAT_HELPERS: ReadonlyMap<string, number> = new Map([
  ['duration', 1],
  ['datetime', 1],
  ['date', 1],
  ['percent', 1],
]);

function formatData(options: unknown): FormatData {
  const data = (options as { data?: { root?: unknown } & Partial<FormatData> } | undefined)?.data;
  return { locale: data?.locale ?? 'en', timeZone: data?.timeZone ?? 'UTC' };
}

/** "1 Tag und 2 Stunden", "45 minutes": the units of durationParts, named by Intl in the template's language. */
export function formatDuration(ms: number, locale: string): string {
  const words = durationParts(ms).map((p) =>
    new Intl.NumberFormat(locale, { style: 'unit', unit: p.unit, unitDisplay: 'long' }).format(p.count),
  );
  return new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' }).format(words);
}

function instant(value: unknown, helper: string, f: FormatData): DateTime | null {
  if (value === '' || value === null || value === undefined) return null;
  const dt =
    typeof value === 'number'
      ? DateTime.fromMillis(value)
      : typeof value === 'string'
        ? DateTime.fromISO(value)
        : DateTime.invalid('not a time');
  if (!dt.isValid) throw new Error(`${helper} needs an ISO time like 2025-03-03T09:41:00Z, got ${JSON.stringify(value)}`);
  return dt.setZone(f.timeZone).setLocale(f.locale);
}

/** "Mar 3, 2025, 9:41 AM UTC", "3. März 2025, 10:41 MEZ": date, time and the zone's short name. */
export function formatDateTime(value: unknown, f: FormatData): string {
  const dt = instant(value, 'datetime', f);
  return dt ? `${dt.toLocaleString(DateTime.DATETIME_MED)} ${dt.toFormat('ZZZZ')}` : '';
}

export function formatDate(value: unknown, f: FormatData): string {
  const dt = instant(value, 'date', f);
  return dt ? dt.toLocaleString(DateTime.DATE_MED) : '';
}

function number(value: unknown, helper: string): number {
  const n = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(n) || n < 0) throw new Error(`${helper} needs a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

/** Registers the format helpers on a private handlebars environment. */
export function registerFormatHelpers(hb: Env): void {
  hb.registerHelper('duration', (ms: unknown, options: unknown) =>
    formatDuration(number(ms, 'duration'), formatData(options).locale),
  );
  hb.registerHelper('datetime', (at: unknown, options: unknown) => formatDateTime(at, formatData(options)));
  hb.registerHelper('date', (at: unknown, options: unknown) => formatDate(at, formatData(options)));
  hb.registerHelper('percent', (share: unknown, options: unknown) =>
    new Intl.NumberFormat(formatData(options).locale, { style: 'percent', maximumFractionDigits: 1 }).format(
      number(share, 'percent'),
    ),
  );
}

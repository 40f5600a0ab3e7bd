import { IANAZone } from 'luxon';

// Business-hours arithmetic: SLA clocks only run while a calendar is open.
//
// Every local date contributes one instant interval per configured range,
// from the first instant the local clock reads the range start to the first
// instant it reads the range end. That makes a range count the real elapsed
// time on DST days (01:00-04:00 lasts 2h when 02:00-03:00 is skipped and 4h
// when it repeats), and a start or end inside a skipped hour snaps to the
// end of the gap. Arithmetic walks these intervals day by day, so adding a
// month of business time costs a few dozen steps, not one per minute.

export const CALENDAR_INVALID = 'TICKETD_CALENDAR_INVALID';
/** Raised when no opening exists within MAX_CLOSED_DAYS, e.g. holidays cover everything. */
export const CALENDAR_NO_OPENING = 'TICKETD_CALENDAR_NO_OPENING';

export type CalendarErrorCode = typeof CALENDAR_INVALID | typeof CALENDAR_NO_OPENING;

export class CalendarError extends Error {
  constructor(
    readonly code: CalendarErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CalendarError';
  }
}

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';

export interface CalendarSpec {
  /** IANA zone the hours and holidays are read in, e.g. `Europe/Berlin`. */
  timezone: string;
  /** Day to ranges such as `"09:00-12:00,13:00-17:00"`; a missing day is closed. */
  hours: Partial<Record<Weekday, string>>;
  /** Local dates (`YYYY-MM-DD`) closed all day. */
  holidays?: string[];
}

/** Name of the built-in calendar that is always open (UTC, no holidays). */
const ALWAYS_OPEN = '24x7';

// Indexed like Date#getUTCDay(): 0 is Sunday.
const WEEKDAYS: readonly Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
// An opening more than three years away means the holiday list swallowed
// the calendar; stop instead of walking forward forever.
const MAX_CLOSED_DAYS = 3 * 366;

/** Minutes after local midnight, end exclusive. */
interface Range {
  start: number;
  end: number;
}

const ALWAYS_OPEN_SPEC: CalendarSpec = {
  timezone: 'UTC',
  hours: Object.fromEntries(WEEKDAYS.map((day) => [day, '00:00-24:00'])),
};

/**
 * Opening hours to count SLA time in. Built once from the config (the
 * schema builds each calendar, so a bad one is a config error with its
 * path); it prints as the spec it was built from, so `check-config --json`
 * and reload diffs show what the operator wrote.
 */
export class BusinessCalendar {
  private constructor(
    /** What it was built from: the config's calendar as written, or "24x7". */
    private readonly spec: CalendarSpec | typeof ALWAYS_OPEN,
    readonly timezone: string,
    private readonly zone: IANAZone,
    /** Ranges per weekday, sorted, indexed like WEEKDAYS. */
    private readonly week: readonly (readonly Range[])[],
    /** Holidays as local day numbers (days since 1970-01-01). */
    private readonly holidays: ReadonlySet<number>,
  ) {}

  /** Validates `spec`; throws CalendarError (TICKETD_CALENDAR_INVALID) naming the problem. */
  static from(spec: CalendarSpec | typeof ALWAYS_OPEN): BusinessCalendar {
    const resolved = spec === ALWAYS_OPEN ? ALWAYS_OPEN_SPEC : spec;
    if (typeof resolved !== 'object' || resolved === null) {
      throw invalid(`expected a calendar object or "${ALWAYS_OPEN}"`);
    }
    if (typeof resolved.timezone !== 'string' || !IANAZone.isValidZone(resolved.timezone)) {
      throw invalid(`unknown timezone "${String(resolved.timezone)}"`);
    }

    for (const key of Object.keys(resolved.hours ?? {})) {
      if (!WEEKDAYS.includes(key as Weekday)) {
        throw invalid(`hours: unknown day "${key}" (expected one of mon, tue, wed, thu, fri, sat, sun)`);
      }
    }
    const week = WEEKDAYS.map((day) => {
      const text = resolved.hours?.[day];
      return text === undefined ? [] : parseDayRanges(day, text);
    });
    if (week.every((ranges) => ranges.length === 0)) {
      throw invalid('hours: no day has opening hours, so SLA time would never run');
    }

    const holidays = new Set<number>();
    for (const text of resolved.holidays ?? []) holidays.add(parseHoliday(text));

    return new BusinessCalendar(spec, resolved.timezone, IANAZone.create(resolved.timezone), week, holidays);
  }

  toJSON(): CalendarSpec | typeof ALWAYS_OPEN {
    return this.spec;
  }

  /**
   * The instant at which `ms` of business time has elapsed counting from
   * `start`; from a closed instant the count begins at the next opening.
   * `ms = 0` returns `start` itself even when closed: nothing has to elapse,
   * so there is no reason to move the instant.
   */
  addBusinessTime(start: Date, ms: number): Date {
    const from = instant(start, 'start');
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`business time to add must be a non-negative finite number, got ${ms}`);
    }
    if (ms === 0) return new Date(from);

    let remaining = ms;
    let reached = from;
    for (const [open, close] of this.intervalsFrom(from, Infinity)) {
      const begin = Math.max(open, from);
      reached = begin + remaining;
      if (reached <= close) break;
      remaining -= close - begin;
    }
    return new Date(reached);
  }

  /** Business milliseconds in [a, b); 0 when b <= a. */
  businessTimeBetween(a: Date, b: Date): number {
    const from = instant(a, 'a');
    const to = instant(b, 'b');
    if (to <= from) return 0;
    let total = 0;
    for (const [open, close] of this.intervalsFrom(from, to)) {
      if (open >= to) break;
      total += Math.min(close, to) - Math.max(open, from);
    }
    return total;
  }

  isOpen(at: Date): boolean {
    const from = instant(at, 'at');
    // Bounded to the day of `at`, so a calendar closed for years answers
    // false here instead of searching for the next opening.
    for (const [open] of this.intervalsFrom(from, from + 1)) return open <= from;
    return false;
  }

  /** `at` itself when open, otherwise the instant the calendar next opens. */
  nextOpening(at: Date): Date {
    const from = instant(at, 'at');
    let opening = from;
    for (const [open] of this.intervalsFrom(from, Infinity)) {
      opening = Math.max(open, from);
      break;
    }
    return new Date(opening);
  }

  /**
   * Open intervals [open, close) in epoch ms that end after `from`, in
   * order, for local dates starting before `until`. Throws CalendarError
   * when MAX_CLOSED_DAYS pass without one.
   */
  private *intervalsFrom(from: number, until: number): Generator<[number, number]> {
    let closedDays = 0;
    for (let day = this.localDay(from); ; day += 1) {
      const midnight = day * DAY_MS;
      const instantAt = this.resolverFor(midnight);
      if (until !== Infinity && instantAt(0) >= until) return;
      let found = false;
      if (!this.holidays.has(day)) {
        // Day 0 (1970-01-01) was a Thursday.
        const ranges = this.week[(((day + 4) % 7) + 7) % 7] ?? [];
        for (const range of ranges) {
          const open = instantAt(range.start);
          const close = instantAt(range.end);
          if (close <= open) continue;
          found = true;
          if (close > from) yield [open, close];
        }
      }
      closedDays = found ? 0 : closedDays + 1;
      if (closedDays > MAX_CLOSED_DAYS) {
        throw new CalendarError(
          CALENDAR_NO_OPENING,
          `calendar (${this.timezone}) has no opening hours for more than ${MAX_CLOSED_DAYS} days ` +
            `after ${new Date(from).toISOString()}; check the holiday list`,
        );
      }
    }
  }

  /**
   * Maps minutes after local `midnight` (encoded as UTC epoch ms) to instants.
   * Most days have one offset throughout, which two lookups a day either side
   * prove (no zone changes its offset twice within three days); only days
   * near a transition pay for the full search.
   */
  private resolverFor(midnight: number): (minutes: number) => number {
    const offset = this.zone.offset(midnight - DAY_MS);
    if (this.zone.offset(midnight + 2 * DAY_MS) === offset) {
      return (minutes) => midnight + (minutes - offset) * MINUTE_MS;
    }
    return (minutes) => this.firstInstantAt(midnight + minutes * MINUTE_MS);
  }

  /** Local date of an instant, as days since 1970-01-01. */
  private localDay(at: number): number {
    return Math.floor((at + this.zone.offset(at) * MINUTE_MS) / DAY_MS);
  }

  /**
   * The first instant the local clock reads `wall` (local time encoded as if
   * it were UTC epoch ms), or the end of the gap when DST skips that reading.
   */
  private firstInstantAt(wall: number): number {
    // Zone offsets lie within -12h..+14h, so any matching instant lies within a
    // day of `wall`; sampling both sides catches a transition in between.
    const offsets = new Set([wall - DAY_MS, wall, wall + DAY_MS].map((t) => this.zone.offset(t)));
    let best = Infinity;
    for (const offset of offsets) {
      const candidate = wall - offset * MINUTE_MS;
      if (this.zone.offset(candidate) === offset) best = Math.min(best, candidate);
    }
    if (best !== Infinity) return best;

    // Skipped reading: the answer is the transition, found by bisection between
    // the readings as seen with the larger and the smaller offset.
    let before = wall - Math.max(...offsets) * MINUTE_MS;
    let after = wall - Math.min(...offsets) * MINUTE_MS;
    const offsetBefore = this.zone.offset(before);
    while (after - before > 1) {
      const middle = Math.floor((before + after) / 2);
      if (this.zone.offset(middle) === offsetBefore) before = middle;
      else after = middle;
    }
    return after;
  }
}

function invalid(message: string): CalendarError {
  return new CalendarError(CALENDAR_INVALID, `invalid calendar: ${message}`);
}

function instant(date: Date, name: string): number {
  const ms = date instanceof Date ? date.getTime() : NaN;
  if (Number.isNaN(ms)) throw new RangeError(`${name} must be a valid Date`);
  return ms;
}

const RANGE = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/;

function parseDayRanges(day: Weekday, text: string): Range[] {
  if (typeof text !== 'string') throw invalid(`hours.${day}: expected a string such as "09:00-17:00"`);
  const ranges = text.split(',').map((part) => {
    const piece = part.trim();
    const match = RANGE.exec(piece);
    if (!match) {
      throw invalid(`hours.${day}: cannot read range "${piece}" (expected "HH:MM-HH:MM", e.g. "09:00-17:00")`);
    }
    const start = clockMinutes(match[1], match[2], false);
    const end = clockMinutes(match[3], match[4], true);
    if (start === null || end === null) {
      throw invalid(`hours.${day}: range "${piece}" has a time outside 00:00-24:00`);
    }
    if (end <= start) throw invalid(`hours.${day}: range "${piece}" must end after it starts`);
    return { start, end };
  });
  ranges.sort((x, y) => x.start - y.start);
  for (let i = 1; i < ranges.length; i += 1) {
    const previous = ranges[i - 1] as Range;
    const current = ranges[i] as Range;
    if (current.start < previous.end) throw invalid(`hours.${day}: ranges in "${text}" overlap`);
  }
  return ranges;
}

/** Minutes after midnight, or null when out of range; 24:00 only as an end. */
function clockMinutes(hours: string | undefined, minutes: string | undefined, isEnd: boolean): number | null {
  const h = Number(hours);
  const m = Number(minutes);
  if (m > 59) return null;
  if (h < 24 || (isEnd && h === 24 && m === 0)) return h * 60 + m;
  return null;
}

const HOLIDAY = /^(\d{4})-(\d{2})-(\d{2})$/;

function parseHoliday(text: string): number {
  const match = typeof text === 'string' ? HOLIDAY.exec(text) : null;
  if (match) {
    const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
    const utc = Date.UTC(year, month - 1, day);
    const check = new Date(utc);
    if (check.getUTCFullYear() === year && check.getUTCMonth() === month - 1 && check.getUTCDate() === day) {
      return utc / DAY_MS;
    }
  }
  throw invalid(`holidays: "${String(text)}" is not a valid date (expected YYYY-MM-DD)`);
}

// Last in the module: building it runs the parsers, whose constants must be defined first.
/** The built-in calendar: every hour counts (a policy's `calendar: "24x7"`). */
export const ALWAYS_OPEN_CALENDAR = BusinessCalendar.from(ALWAYS_OPEN);

// Durations and percentages as written in the config ("4h", "1d 4h", "80%"),
// and durations split into the units people read them in ("1 day and 2 hours").

export const DURATION_INVALID = 'TICKETD_DURATION_INVALID';

export class DurationError extends Error {
  readonly code = DURATION_INVALID;

  constructor(message: string) {
    super(message);
    this.name = 'DurationError';
  }
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
// A "d" is 24 hours of counted time, not a calendar day and not a working
// day: "2d" against a 09:00-17:00 calendar takes six working days to run
// out, because the business calendar decides when time is counted and the
// duration only says how much of it.
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

// Units in the only order they may appear; each at most once, so "1h1h" or
// "30m 1h" are rejected as likely typos rather than silently summed.
const UNITS: ReadonlyArray<readonly [string, number]> = [
  ['w', WEEK],
  ['d', DAY],
  ['h', HOUR],
  ['m', MINUTE],
  ['s', SECOND],
];

const TOKEN = /(\d+)\s*([a-zA-Z]+)\s*/y;

/**
 * A duration from the config: its length, and the text the operator wrote,
 * which is what it prints as (`check-config --json`, reload diffs, logs), so
 * "1d 4h" is never shown back as 100800000. Read once, by the config schema;
 * everything after uses `ms`.
 */
export class Duration {
  private constructor(
    readonly ms: number,
    readonly text: string,
  ) {}

  /** "90s", "30m", "4h", "2d", "1w" or a combination written largest unit first ("1h30m", "1d 4h"). Throws DurationError otherwise. */
  static parse(text: string): Duration {
    return new Duration(parseDuration(text), text);
  }

  toJSON(): string {
    return this.text;
  }

  toString(): string {
    return this.text;
  }
}

function parseDuration(text: string): number {
  const input = text.trim();
  if (input === '') throw invalidDuration(text, 'it is empty');

  let total = 0;
  let nextUnit = 0;
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < input.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(input);
    if (!match) throw invalidDuration(text, `cannot read "${input.slice(at)}"`);
    const unit = match[2] ?? '';
    const index = UNITS.findIndex(([name]) => name === unit);
    const size = UNITS[index]?.[1];
    if (size === undefined) throw invalidDuration(text, `unknown unit "${unit}"`);
    if (index < nextUnit) {
      throw invalidDuration(text, `unit "${unit}" is repeated or out of order (write the largest unit first)`);
    }
    nextUnit = index + 1;
    total += Number(match[1]) * size;
  }
  if (!Number.isSafeInteger(total)) throw invalidDuration(text, 'it is too large');
  return total;
}

function invalidDuration(text: string, why: string): DurationError {
  return new DurationError(`invalid duration "${text}": ${why} (expected e.g. "90s", "30m", "4h", "2d", "1w" or "1h30m")`);
}

export type DurationUnit = 'day' | 'hour' | 'minute' | 'second';

interface WordUnit {
  name: DurationUnit;
  size: number;
  /** The next smaller unit: the second unit shown and the rounding step. */
  minor: WordUnit | null;
}

const MINUTE_WORD: WordUnit = { name: 'minute', size: MINUTE, minor: null };
const HOUR_WORD: WordUnit = { name: 'hour', size: HOUR, minor: MINUTE_WORD };
const DAY_WORD: WordUnit = { name: 'day', size: DAY, minor: HOUR_WORD };
const WORD_UNITS = [DAY_WORD, HOUR_WORD, MINUTE_WORD];

export interface DurationPart {
  unit: DurationUnit;
  count: number;
}

/**
 * A duration as people say it, in any language: at most two adjacent units,
 * largest first, rounded to the smaller of the two (1 day 2 hours, 45
 * minutes). Under a minute it is whole seconds.
 */
export function durationParts(ms: number): DurationPart[] {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new DurationError(`cannot describe duration ${ms}: expected a non-negative number of milliseconds`);
  }
  const first = WORD_UNITS.find((unit) => ms >= unit.size);
  if (!first) return [{ unit: 'second', count: Math.floor(ms / SECOND) }];

  const step = first.minor?.size ?? first.size;
  const rounded = Math.round(ms / step) * step;
  // Rounding up can land exactly on the next unit (23h59m40s -> 1 day), which
  // then has no remainder.
  const unit = WORD_UNITS.find((candidate) => rounded >= candidate.size) ?? first;
  const count = Math.floor(rounded / unit.size);
  const rest = unit.minor ? Math.round((rounded - count * unit.size) / unit.minor.size) : 0;
  const parts: DurationPart[] = [{ unit: unit.name, count }];
  if (unit.minor && rest > 0) parts.push({ unit: unit.minor.name, count: rest });
  return parts;
}

/**
 * English words for operators (`ticketd sla status`, `sla tick`): "1 day and
 * 2 hours", "45 minutes". Mail templates format durations themselves, in
 * their own language (see compose/format-helpers.ts).
 */
export function formatDurationWords(ms: number): string {
  const parts = durationParts(ms);
  if (parts[0]?.unit === 'second') return 'less than a minute';
  return parts.map((p) => `${p.count} ${p.unit}${p.count === 1 ? '' : 's'}`).join(' and ');
}

/** A share of an SLA target from the config ("80%"): the share (0.8) and the text as written, which it prints as. */
export class Percent {
  private constructor(
    readonly share: number,
    readonly text: string,
  ) {}

  /** "80%"; "12.5%" and values over 100% are accepted. Throws DurationError otherwise. */
  static parse(text: string): Percent {
    const match = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(text);
    if (!match) {
      throw new DurationError(`invalid percentage "${text}": expected a non-negative number followed by "%", e.g. "80%"`);
    }
    return new Percent(Number(match[1]) / 100, text);
  }

  toJSON(): string {
    return this.text;
  }

  toString(): string {
    return this.text;
  }
}

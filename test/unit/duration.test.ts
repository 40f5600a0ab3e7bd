import { describe, expect, it } from 'vitest';
import { Duration, DURATION_INVALID, DurationError, formatDurationWords, Percent } from '../../src/core/duration.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('Duration.parse', () => {
  it.each([
    ['90s', 90 * S],
    ['30m', 30 * M],
    ['4h', 4 * H],
    ['2d', 2 * D],
    ['1w', 7 * D],
    ['1h30m', H + 30 * M],
    ['1d 4h', D + 4 * H],
    ['1w2d3h4m5s', 7 * D + 2 * D + 3 * H + 4 * M + 5 * S],
    ['  45m  ', 45 * M],
    ['4 h', 4 * H],
    ['0m', 0],
    ['120m', 2 * H],
  ])('%j is %d ms', (text, ms) => {
    expect(Duration.parse(text).ms).toBe(ms);
  });

  it('keeps the text as written, and prints as it', () => {
    const d = Duration.parse('1d 4h');
    expect(d.text).toBe('1d 4h');
    expect(JSON.stringify({ d })).toBe('{"d":"1d 4h"}');
    expect(`${d}`).toBe('1d 4h');
  });

  it.each([
    ['', 'empty'],
    ['   ', 'empty'],
    ['4', 'cannot read'],
    ['h', 'cannot read'],
    ['4x', 'unknown unit "x"'],
    ['4H', 'unknown unit "H"'],
    ['1M', 'unknown unit "M"'],
    ['500ms', 'unknown unit "ms"'],
    ['1.5h', 'cannot read'],
    ['-4h', 'cannot read'],
    ['4h+30m', 'cannot read'],
    ['1h1h', 'repeated or out of order'],
    ['30m 1h', 'repeated or out of order'],
    ['4 hours', 'unknown unit "hours"'],
    ['99999999999999999w', 'too large'],
  ])('rejects %j (%s)', (text, why) => {
    const error = thrown(() => Duration.parse(text));
    expect(error).toBeInstanceOf(DurationError);
    expect((error as DurationError).code).toBe(DURATION_INVALID);
    expect(DURATION_INVALID).toBe('TICKETD_DURATION_INVALID');
    expect((error as DurationError).message).toContain(`"${text}"`);
    expect((error as DurationError).message).toContain(why);
  });
});

describe('formatDurationWords', () => {
  it.each([
    [0, 'less than a minute'],
    [59 * S, 'less than a minute'],
    [M, '1 minute'],
    [45 * M, '45 minutes'],
    [45 * M + 29 * S, '45 minutes'],
    [45 * M + 30 * S, '46 minutes'],
    [H, '1 hour'],
    [3 * H, '3 hours'],
    [H + M, '1 hour and 1 minute'],
    [2 * H + 30 * M, '2 hours and 30 minutes'],
    [23 * H + 59 * M + 40 * S, '1 day'],
    [D, '1 day'],
    [D + 2 * H, '1 day and 2 hours'],
    [D + 2 * H + 29 * M, '1 day and 2 hours'],
    [D + 2 * H + 31 * M, '1 day and 3 hours'],
    [D + 30 * M, '1 day and 1 hour'],
    [D + 29 * M, '1 day'],
    [D + 23 * H + 45 * M, '2 days'],
    [3 * D, '3 days'],
    [10 * D + 5 * H, '10 days and 5 hours'],
  ])('%d ms reads "%s"', (ms, words) => {
    expect(formatDurationWords(ms)).toBe(words);
  });

  it('round-trips parsed durations', () => {
    expect(formatDurationWords(Duration.parse('1d 4h').ms)).toBe('1 day and 4 hours');
    expect(formatDurationWords(Duration.parse('1w').ms)).toBe('7 days');
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects %d', (ms) => {
    const error = thrown(() => formatDurationWords(ms));
    expect(error).toBeInstanceOf(DurationError);
    expect((error as DurationError).code).toBe(DURATION_INVALID);
  });
});

describe('Percent.parse', () => {
  it.each([
    ['80%', 0.8],
    ['100%', 1],
    ['0%', 0],
    ['12.5%', 0.125],
    [' 50 % ', 0.5],
    ['150%', 1.5],
  ])('%j is %d', (text, value) => {
    expect(Percent.parse(text).share).toBe(value);
  });

  it('keeps the text as written, and prints as it', () => {
    const p = Percent.parse('12.5%');
    expect(p.text).toBe('12.5%');
    expect(JSON.stringify([p])).toBe('["12.5%"]');
  });

  it.each(['80', '', '%', '-10%', 'eighty%', '0.8', '80%%', '1e2%'])('rejects %j', (text) => {
    const error = thrown(() => Percent.parse(text));
    expect(error).toBeInstanceOf(DurationError);
    expect((error as DurationError).code).toBe(DURATION_INVALID);
    expect((error as DurationError).message).toContain(`"${text}"`);
  });
});

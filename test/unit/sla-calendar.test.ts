import { DateTime } from 'luxon';
import { describe, expect, it, vi } from 'vitest';
import {
  BusinessCalendar,
  CALENDAR_INVALID,
  CALENDAR_NO_OPENING,
  CalendarError,
  type CalendarSpec,
  type Weekday,
} from '../../src/core/calendar.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const WEEKDAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri'];
const ALL_DAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

function hoursOn(days: Weekday[], ranges: string): CalendarSpec['hours'] {
  return Object.fromEntries(days.map((day) => [day, ranges]));
}

const BERLIN = 'Europe/Berlin';
const officeSpec: CalendarSpec = {
  timezone: BERLIN,
  hours: hoursOn(WEEKDAYS, '09:00-17:00'),
  holidays: ['2026-12-25'],
};
const office = BusinessCalendar.from(officeSpec);

/** An unambiguous local wall time in `zone` as an instant. */
function local(zone: string, text: string): Date {
  const parsed = DateTime.fromISO(text, { zone });
  if (!parsed.isValid) throw new Error(`bad test time ${text}`);
  return parsed.toJSDate();
}

/** An instant shown as local wall time with its offset, e.g. 2026-03-02T14:00+01:00. */
function shown(zone: string, at: Date): string {
  return DateTime.fromJSDate(at, { zone }).toFormat("yyyy-MM-dd'T'HH:mmZZ");
}

const utc = (text: string) => new Date(text);

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('office hours in Berlin (Mon-Fri 09:00-17:00, 25 Dec closed)', () => {
  const b = (text: string) => local(BERLIN, text);
  const add = (text: string, ms: number) => shown(BERLIN, office.addBusinessTime(b(text), ms));

  it('adds inside the same day', () => {
    expect(add('2026-03-02T10:00', 4 * HOUR)).toBe('2026-03-02T14:00+01:00');
  });

  it('stops at closing time when the time runs out exactly then', () => {
    expect(add('2026-03-02T09:00', 8 * HOUR)).toBe('2026-03-02T17:00+01:00');
    expect(add('2026-03-02T09:00', 8 * HOUR + 1)).toBe('2026-03-03T09:00+01:00');
  });

  it('starts counting at the opening when started before hours', () => {
    expect(add('2026-03-02T07:00', HOUR)).toBe('2026-03-02T10:00+01:00');
  });

  it('starts counting the next morning when started after hours', () => {
    expect(add('2026-03-02T18:00', HOUR)).toBe('2026-03-03T10:00+01:00');
  });

  it('skips the weekend', () => {
    expect(add('2026-03-06T15:00', 4 * HOUR)).toBe('2026-03-09T11:00+01:00');
    expect(add('2026-03-07T12:00', 30 * MIN)).toBe('2026-03-09T09:30+01:00');
  });

  it('skips holidays and the weekend after them', () => {
    expect(add('2026-12-24T15:00', 4 * HOUR)).toBe('2026-12-28T11:00+01:00');
    expect(office.isOpen(b('2026-12-25T10:00'))).toBe(false);
    expect(shown(BERLIN, office.nextOpening(b('2026-12-25T10:00')))).toBe('2026-12-28T09:00+01:00');
    expect(office.businessTimeBetween(b('2026-12-21T00:00'), b('2026-12-28T00:00'))).toBe(32 * HOUR);
  });

  it('returns the start itself for zero business time, even when closed', () => {
    const saturday = b('2026-03-07T12:00');
    expect(office.addBusinessTime(saturday, 0).getTime()).toBe(saturday.getTime());
  });

  it('measures a plain week as five eight-hour days', () => {
    expect(office.businessTimeBetween(b('2026-03-02T00:00'), b('2026-03-09T00:00'))).toBe(40 * HOUR);
    expect(office.businessTimeBetween(b('2026-03-02T12:00'), b('2026-03-02T12:30'))).toBe(30 * MIN);
    expect(office.businessTimeBetween(b('2026-03-07T00:00'), b('2026-03-08T23:59'))).toBe(0);
  });

  it('is zero for an empty or reversed interval', () => {
    expect(office.businessTimeBetween(b('2026-03-02T12:00'), b('2026-03-02T12:00'))).toBe(0);
    expect(office.businessTimeBetween(b('2026-03-03T12:00'), b('2026-03-02T12:00'))).toBe(0);
    expect(office.businessTimeBetween(b('2026-03-02T12:00'), b('2026-03-02T11:00'))).toBe(0);
  });

  it('treats opening as inclusive and closing as exclusive', () => {
    expect(office.isOpen(b('2026-03-02T09:00'))).toBe(true);
    expect(office.isOpen(new Date(b('2026-03-02T09:00').getTime() - 1))).toBe(false);
    expect(office.isOpen(new Date(b('2026-03-02T17:00').getTime() - 1))).toBe(true);
    expect(office.isOpen(b('2026-03-02T17:00'))).toBe(false);
  });

  it('reports the next opening, or the instant itself when open', () => {
    const open = b('2026-03-02T11:11');
    expect(office.nextOpening(open).getTime()).toBe(open.getTime());
    expect(shown(BERLIN, office.nextOpening(b('2026-03-02T17:00')))).toBe('2026-03-03T09:00+01:00');
    expect(shown(BERLIN, office.nextOpening(b('2026-03-06T20:00')))).toBe('2026-03-09T09:00+01:00');
  });

  it('keeps local opening hours across both DST changes', () => {
    // Friday 16:00 CET plus two hours is Monday 10:00 CEST, i.e. 08:00Z.
    expect(office.addBusinessTime(b('2026-03-27T16:00'), 2 * HOUR).toISOString()).toBe('2026-03-30T08:00:00.000Z');
    expect(office.addBusinessTime(b('2026-10-23T16:00'), 2 * HOUR).toISOString()).toBe('2026-10-26T09:00:00.000Z');
    expect(office.businessTimeBetween(b('2026-03-23T00:00'), b('2026-04-06T00:00'))).toBe(80 * HOUR);
  });

  it('adds 30 days of business time (90 office days) by walking days, not minutes', () => {
    const start = b('2026-03-02T09:00');
    // Each local day walked is resolved once (its offset from UTC): the
    // count is the work done, and unlike a stopwatch it does not change with
    // the machine's load.
    const daysWalked = vi.spyOn(BusinessCalendar.prototype as unknown as { resolverFor(m: number): unknown }, 'resolverFor');
    try {
      const end = office.addBusinessTime(start, 30 * DAY);
      // 18 full weeks: ends at closing on the Friday of the 18th week.
      expect(shown(BERLIN, end)).toBe('2026-07-03T17:00+02:00');
      // Monday 2 March to Friday 3 July: 124 days, each walked once.
      expect(daysWalked).toHaveBeenCalledTimes(124);
      expect(office.businessTimeBetween(start, end)).toBe(30 * DAY);
    } finally {
      daysWalked.mockRestore();
    }
  });
});

describe('split ranges (lunch break)', () => {
  const lunch = BusinessCalendar.from({ timezone: BERLIN, hours: hoursOn(WEEKDAYS, '09:00-12:00, 13:00-17:00') });
  const b = (text: string) => local(BERLIN, text);

  it('does not count the break', () => {
    expect(shown(BERLIN, lunch.addBusinessTime(b('2026-03-02T11:00'), 2 * HOUR))).toBe('2026-03-02T14:00+01:00');
    expect(lunch.businessTimeBetween(b('2026-03-02T09:00'), b('2026-03-02T17:00'))).toBe(7 * HOUR);
    expect(lunch.businessTimeBetween(b('2026-03-02T12:15'), b('2026-03-02T12:45'))).toBe(0);
  });

  it('is closed during the break and reopens after it', () => {
    expect(lunch.isOpen(b('2026-03-02T12:30'))).toBe(false);
    expect(shown(BERLIN, lunch.nextOpening(b('2026-03-02T12:30')))).toBe('2026-03-02T13:00+01:00');
    expect(shown(BERLIN, lunch.addBusinessTime(b('2026-03-02T12:30'), MIN))).toBe('2026-03-02T13:01+01:00');
  });

  it('stops at the start of the break when the time runs out there', () => {
    expect(shown(BERLIN, lunch.addBusinessTime(b('2026-03-02T09:00'), 3 * HOUR))).toBe('2026-03-02T12:00+01:00');
  });

  it('accepts ranges written out of order and touching ranges', () => {
    const unordered = BusinessCalendar.from({ timezone: BERLIN, hours: { mon: '13:00-17:00,09:00-12:00' } });
    expect(unordered.businessTimeBetween(b('2026-03-02T00:00'), b('2026-03-03T00:00'))).toBe(7 * HOUR);
    const touching = BusinessCalendar.from({ timezone: BERLIN, hours: { mon: '09:00-12:00,12:00-17:00' } });
    expect(touching.businessTimeBetween(b('2026-03-02T00:00'), b('2026-03-03T00:00'))).toBe(8 * HOUR);
    expect(touching.isOpen(b('2026-03-02T12:00'))).toBe(true);
  });
});

describe('daylight saving time', () => {
  it('counts the real elapsed time of a night range in Berlin', () => {
    const night = BusinessCalendar.from({ timezone: BERLIN, hours: { sun: '01:00-04:00' } });
    // Spring forward: 02:00-03:00 does not exist, the range lasts two hours.
    expect(night.businessTimeBetween(utc('2026-03-28T12:00Z'), utc('2026-03-30T00:00Z'))).toBe(2 * HOUR);
    // Fall back: 02:00-03:00 happens twice, the range lasts four hours.
    expect(night.businessTimeBetween(utc('2026-10-24T12:00Z'), utc('2026-10-26T00:00Z'))).toBe(4 * HOUR);
    // An ordinary Sunday in between lasts three.
    expect(night.businessTimeBetween(utc('2026-06-06T12:00Z'), utc('2026-06-08T00:00Z'))).toBe(3 * HOUR);

    // 01:00 CET is 00:00Z; 90 minutes later the clock reads 03:30 CEST.
    expect(night.addBusinessTime(utc('2026-03-28T12:00Z'), 90 * MIN).toISOString()).toBe('2026-03-29T01:30:00.000Z');
    // Fall back: 01:00 CEST is 23:00Z the evening before; 3.5 hours later the clock reads 03:30 CET.
    expect(night.addBusinessTime(utc('2026-10-24T12:00Z'), 210 * MIN).toISOString()).toBe('2026-10-25T02:30:00.000Z');
    // The second pass through 02:30 (CET, 01:30Z) is still open.
    expect(night.isOpen(utc('2026-10-25T01:30Z'))).toBe(true);
    expect(night.isOpen(utc('2026-10-25T03:00Z'))).toBe(false);
  });

  it('snaps a range boundary inside the skipped hour to the end of the gap', () => {
    const gap = BusinessCalendar.from({ timezone: BERLIN, hours: { sun: '02:30-03:30' } });
    // 02:30 never happens on 29 March: the clock jumps to 03:00 CEST (01:00Z).
    expect(gap.nextOpening(utc('2026-03-28T12:00Z')).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(gap.businessTimeBetween(utc('2026-03-28T12:00Z'), utc('2026-03-30T00:00Z'))).toBe(30 * MIN);
  });

  it('opens at the first 02:30 on the fall-back night in Berlin', () => {
    const twice = BusinessCalendar.from({ timezone: BERLIN, hours: { sun: '02:30-05:00' } });
    // The first 02:30 is CEST (00:30Z); 05:00 CET is 04:00Z.
    expect(twice.nextOpening(utc('2026-10-24T12:00Z')).toISOString()).toBe('2026-10-25T00:30:00.000Z');
    expect(twice.businessTimeBetween(utc('2026-10-24T12:00Z'), utc('2026-10-26T00:00Z'))).toBe(3.5 * HOUR);
  });

  it('makes a whole-day range 23 and 25 hours long in Los Angeles', () => {
    const LA = 'America/Los_Angeles';
    const sundays = BusinessCalendar.from({ timezone: LA, hours: { sun: '00:00-24:00' } });
    expect(sundays.businessTimeBetween(local(LA, '2026-03-07T12:00'), local(LA, '2026-03-09T12:00'))).toBe(23 * HOUR);
    expect(sundays.businessTimeBetween(local(LA, '2026-10-31T12:00'), local(LA, '2026-11-02T12:00'))).toBe(25 * HOUR);
    // Sunday 00:00 PDT is 07:00Z; 24 hours of open time end at Monday 00:00 PST (08:00Z).
    expect(sundays.addBusinessTime(local(LA, '2026-10-31T12:00'), 24 * HOUR).toISOString()).toBe('2026-11-02T07:00:00.000Z');
    expect(sundays.addBusinessTime(local(LA, '2026-10-31T12:00'), 25 * HOUR).toISOString()).toBe('2026-11-02T08:00:00.000Z');
  });

  it('keeps office hours local in Los Angeles across both changes', () => {
    const LA = 'America/Los_Angeles';
    const laOffice = BusinessCalendar.from({ timezone: LA, hours: hoursOn(WEEKDAYS, '08:00-16:00') });
    // Friday 15:00 PST plus two hours is Monday 09:00 PDT (16:00Z).
    expect(laOffice.addBusinessTime(local(LA, '2026-03-06T15:00'), 2 * HOUR).toISOString()).toBe('2026-03-09T16:00:00.000Z');
    // Friday 15:00 PDT plus two hours is Monday 09:00 PST (17:00Z).
    expect(laOffice.addBusinessTime(local(LA, '2026-10-30T15:00'), 2 * HOUR).toISOString()).toBe('2026-11-02T17:00:00.000Z');
  });
});

describe('time zones far from UTC', () => {
  it('uses the half-hour offset of Asia/Kolkata', () => {
    const KOL = 'Asia/Kolkata';
    const india = BusinessCalendar.from({ timezone: KOL, hours: hoursOn(WEEKDAYS, '09:30-18:30') });
    // 03:00Z is 08:30 IST on Monday, an hour before opening at 04:00Z.
    expect(india.isOpen(utc('2026-06-01T03:00Z'))).toBe(false);
    expect(india.nextOpening(utc('2026-06-01T03:00Z')).toISOString()).toBe('2026-06-01T04:00:00.000Z');
    expect(india.addBusinessTime(utc('2026-06-01T03:00Z'), HOUR).toISOString()).toBe('2026-06-01T05:00:00.000Z');
    // Friday 18:00 IST plus one hour is Monday 10:00 IST.
    expect(shown(KOL, india.addBusinessTime(local(KOL, '2026-06-05T18:00'), HOUR))).toBe('2026-06-08T10:00+05:30');
    expect(india.businessTimeBetween(utc('2026-06-01T00:00Z'), utc('2026-06-02T00:00Z'))).toBe(9 * HOUR);
  });

  it('reads holidays as local dates in Pacific/Auckland', () => {
    const AKL = 'Pacific/Auckland';
    const nz = BusinessCalendar.from({
      timezone: AKL,
      hours: hoursOn(WEEKDAYS, '09:00-17:00'),
      holidays: ['2026-06-01'],
    });
    // Sunday 21:00Z is Monday 09:00 NZST (+12), but that Monday is a holiday.
    expect(nz.isOpen(utc('2026-05-31T21:00Z'))).toBe(false);
    expect(nz.nextOpening(utc('2026-05-31T21:00Z')).toISOString()).toBe('2026-06-01T21:00:00.000Z');
    expect(nz.isOpen(utc('2026-06-07T21:00Z'))).toBe(true);
    expect(nz.isOpen(utc('2026-06-07T20:59:59.999Z'))).toBe(false);
  });

  it('follows the Auckland DST changes (April back, September forward)', () => {
    const AKL = 'Pacific/Auckland';
    const sundays = BusinessCalendar.from({ timezone: AKL, hours: { sun: '00:00-24:00' } });
    expect(sundays.businessTimeBetween(local(AKL, '2026-04-04T12:00'), local(AKL, '2026-04-06T12:00'))).toBe(25 * HOUR);
    expect(sundays.businessTimeBetween(local(AKL, '2026-09-26T12:00'), local(AKL, '2026-09-28T12:00'))).toBe(23 * HOUR);
  });
});

describe('24x7', () => {
  const always = BusinessCalendar.from('24x7');

  it('is plain addition and subtraction', () => {
    const start = utc('2026-03-28T23:17:05.123Z');
    for (const ms of [0, 1, 59_999, HOUR, 7 * DAY + 13, 400 * DAY]) {
      expect(always.addBusinessTime(start, ms).getTime()).toBe(start.getTime() + ms);
      expect(always.businessTimeBetween(start, new Date(start.getTime() + ms))).toBe(ms);
    }
  });

  it('is always open', () => {
    for (const at of ['2026-01-01T00:00Z', '2026-03-29T02:30Z', '2026-12-25T12:00Z', '2026-06-06T23:59:59.999Z']) {
      expect(always.isOpen(utc(at))).toBe(true);
      expect(always.nextOpening(utc(at)).getTime()).toBe(utc(at).getTime());
    }
  });
});

describe('argument checks', () => {
  it('rejects negative or non-finite durations and invalid dates', () => {
    expect(() => office.addBusinessTime(utc('2026-03-02T10:00Z'), -1)).toThrow(RangeError);
    expect(() => office.addBusinessTime(utc('2026-03-02T10:00Z'), Number.NaN)).toThrow(RangeError);
    expect(() => office.addBusinessTime(utc('2026-03-02T10:00Z'), Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => office.isOpen(new Date('nope'))).toThrow(RangeError);
    expect(() => office.businessTimeBetween(new Date('nope'), utc('2026-03-02T10:00Z'))).toThrow(RangeError);
  });
});

describe('invalid calendars', () => {
  const base: CalendarSpec = { timezone: BERLIN, hours: { mon: '09:00-17:00' } };

  it.each<[string, CalendarSpec, string]>([
    ['unknown timezone', { ...base, timezone: 'Mars/Olympus_Mons' }, 'unknown timezone "Mars/Olympus_Mons"'],
    ['range without minutes', { ...base, hours: { mon: '9-17' } }, 'hours.mon: cannot read range "9-17"'],
    ['empty day', { ...base, hours: { tue: '' } }, 'hours.tue: cannot read range ""'],
    ['end before start', { ...base, hours: { wed: '17:00-09:00' } }, 'hours.wed: range "17:00-09:00" must end after it starts'],
    ['empty range', { ...base, hours: { wed: '09:00-09:00' } }, 'must end after it starts'],
    ['hour past 24', { ...base, hours: { thu: '09:00-25:00' } }, 'hours.thu: range "09:00-25:00" has a time outside'],
    ['24:30 end', { ...base, hours: { thu: '09:00-24:30' } }, 'has a time outside'],
    ['24:00 start', { ...base, hours: { thu: '24:00-24:00' } }, 'has a time outside'],
    ['minute past 59', { ...base, hours: { thu: '09:60-17:00' } }, 'has a time outside'],
    [
      'overlapping ranges',
      { ...base, hours: { fri: '09:00-13:00,12:00-17:00' } },
      'hours.fri: ranges in "09:00-13:00,12:00-17:00" overlap',
    ],
    ['unknown day', { ...base, hours: { monday: '09:00-17:00' } as CalendarSpec['hours'] }, 'hours: unknown day "monday"'],
    ['all days closed', { ...base, hours: {} }, 'no day has opening hours'],
    ['impossible holiday', { ...base, holidays: ['2026-02-30'] }, 'holidays: "2026-02-30" is not a valid date'],
    ['malformed holiday', { ...base, holidays: ['25.12.2026'] }, 'holidays: "25.12.2026" is not a valid date'],
  ])('rejects %s', (_name, spec, message) => {
    const error = thrown(() => BusinessCalendar.from(spec));
    expect(error).toBeInstanceOf(CalendarError);
    expect((error as CalendarError).code).toBe(CALENDAR_INVALID);
    expect(CALENDAR_INVALID).toBe('TICKETD_CALENDAR_INVALID');
    expect((error as CalendarError).message).toContain(message);
  });

  it('accepts 24:00 as an end and whole-day ranges', () => {
    const late = BusinessCalendar.from({ timezone: BERLIN, hours: { mon: '20:00-24:00', tue: '00:00-02:00' } });
    // Monday 20:00 to Tuesday 02:00 is one continuous stretch of six hours.
    const end = late.addBusinessTime(local(BERLIN, '2026-03-02T21:00'), 4 * HOUR);
    expect(shown(BERLIN, end)).toBe('2026-03-03T01:00+01:00');
  });
});

describe('a holiday list that closes every opening', () => {
  // Only Mondays are open, and every Monday from 2026 to 2030 is a holiday.
  const mondays: string[] = [];
  for (let day = DateTime.fromISO('2026-01-05', { zone: 'UTC' }); day.year < 2031; day = day.plus({ weeks: 1 })) {
    mondays.push(day.toISODate() ?? '');
  }
  const closed = BusinessCalendar.from({ timezone: BERLIN, hours: { mon: '09:00-17:00' }, holidays: mondays });

  it('gives up with TICKETD_CALENDAR_NO_OPENING instead of looping', () => {
    for (const call of [
      () => closed.addBusinessTime(utc('2026-01-01T00:00Z'), HOUR),
      () => closed.nextOpening(utc('2026-01-01T00:00Z')),
    ]) {
      const error = thrown(call);
      expect(error).toBeInstanceOf(CalendarError);
      expect((error as CalendarError).code).toBe(CALENDAR_NO_OPENING);
    }
  });

  it('still answers bounded questions inside the closed stretch', () => {
    expect(closed.businessTimeBetween(utc('2026-01-01T00:00Z'), utc('2026-12-31T00:00Z'))).toBe(0);
    expect(closed.isOpen(local(BERLIN, '2027-03-01T10:00'))).toBe(false);
  });

  it('finds the opening after the stretch when it is near enough', () => {
    expect(shown(BERLIN, closed.nextOpening(utc('2029-06-01T00:00Z')))).toBe('2031-01-06T09:00+01:00');
  });
});

/** Deterministic PRNG (mulberry32) so a failing case can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  name: string;
  spec: CalendarSpec;
}

const CASES: Case[] = [
  {
    name: 'Berlin office with lunch and holidays',
    spec: {
      timezone: BERLIN,
      hours: hoursOn(WEEKDAYS, '09:00-12:30,13:15-17:00'),
      holidays: ['2026-03-30', '2026-10-26', '2026-12-25'],
    },
  },
  {
    name: 'Berlin nights across DST',
    spec: { timezone: BERLIN, hours: { ...hoursOn(ALL_DAYS, '01:00-04:00'), sat: '00:00-02:30,22:00-24:00' } },
  },
  {
    name: 'Los Angeles Sundays and weekdays',
    spec: { timezone: 'America/Los_Angeles', hours: { ...hoursOn(WEEKDAYS, '08:00-16:00'), sun: '00:00-24:00' } },
  },
  {
    name: 'Kolkata office',
    spec: { timezone: 'Asia/Kolkata', hours: hoursOn(WEEKDAYS, '09:30-18:30'), holidays: ['2026-08-15'] },
  },
  {
    // The Sunday range straddles both Auckland DST changes (02:00/03:00 local).
    name: 'Auckland with Saturday mornings',
    spec: {
      timezone: 'Pacific/Auckland',
      hours: { ...hoursOn(WEEKDAYS, '08:30-17:30'), sat: '09:00-12:00', sun: '02:00-03:30' },
    },
  },
];

/** Independent check: is the local wall time in a range? Minute-grained, via luxon. */
function wallClockOpen(spec: CalendarSpec, at: number): boolean {
  const time = DateTime.fromMillis(at, { zone: spec.timezone });
  if (spec.holidays?.includes(time.toISODate() ?? '')) return false;
  const day = ALL_DAYS[time.weekday - 1] as Weekday;
  const minutes = time.hour * 60 + time.minute;
  return (spec.hours[day] ?? '')
    .split(',')
    .filter((range) => range !== '')
    .some((range) => {
      const [start, end] = range
        .trim()
        .split('-')
        .map((clock) => {
          const [h, m] = clock.split(':').map(Number);
          return (h ?? 0) * 60 + (m ?? 0);
        });
      return minutes >= (start ?? 0) && minutes < (end ?? 0);
    });
}

const YEAR_START = Date.UTC(2026, 0, 1);
const YEAR_MS = 365 * DAY;
// Start instants that hit DST nights on purpose, next to random ones.
const DST_STARTS = [
  '2026-03-28T22:00Z',
  '2026-03-29T00:30Z',
  '2026-10-24T21:00Z',
  '2026-10-25T00:45Z',
  '2026-03-08T09:30Z',
  '2026-11-01T08:30Z',
  '2026-04-04T13:30Z',
  '2026-09-26T13:59Z',
];

describe.each([...CASES, { name: '24x7', spec: null }])('properties: $name', ({ spec }) => {
  const calendar = BusinessCalendar.from(spec ?? '24x7');

  it('businessTimeBetween(s, addBusinessTime(s, x)) === x, ending on open time', () => {
    const random = prng(0x5eed ^ (spec?.timezone.length ?? 7));
    const starts = [...DST_STARTS.map((text) => Date.parse(text))];
    for (let i = 0; i < 300; i += 1) starts.push(YEAR_START + Math.floor(random() * YEAR_MS));
    for (const start of starts) {
      const pick = random();
      // Zero, short and long ms-grained amounts, and round half hours that land on boundaries.
      const x =
        pick < 0.1
          ? 0
          : pick < 0.5
            ? Math.floor(random() * 10 * HOUR)
            : pick < 0.8
              ? Math.floor(random() * 20 * DAY)
              : Math.floor(random() * 48) * 30 * MIN;
      const s = new Date(start);
      const end = calendar.addBusinessTime(s, x);
      expect(calendar.businessTimeBetween(s, end), `start ${s.toISOString()} x ${x}`).toBe(x);
      expect(end.getTime()).toBeGreaterThanOrEqual(start);
      if (x > 0) {
        // No closed time is tacked on: the last millisecond counted was open.
        expect(calendar.isOpen(new Date(end.getTime() - 1)), `start ${s.toISOString()} x ${x}`).toBe(true);
        expect(calendar.addBusinessTime(s, x - 1).getTime()).toBeLessThan(end.getTime());
      } else {
        expect(end.getTime()).toBe(start);
      }
      // Counting from a closed instant starts at the next opening.
      expect(calendar.businessTimeBetween(s, calendar.nextOpening(s))).toBe(0);
    }
  });

  it('splits additively: adding x then y equals adding x + y', () => {
    const random = prng(0xadd ^ (spec?.timezone.length ?? 7));
    for (let i = 0; i < 100; i += 1) {
      const s = new Date(YEAR_START + Math.floor(random() * YEAR_MS));
      const x = Math.floor(random() * 3 * DAY);
      const y = 1 + Math.floor(random() * 3 * DAY);
      const direct = calendar.addBusinessTime(s, x + y);
      const stepped = calendar.addBusinessTime(calendar.addBusinessTime(s, x), y);
      expect(stepped.getTime(), `start ${s.toISOString()} x ${x} y ${y}`).toBe(direct.getTime());
    }
  });
});

describe.each(CASES)('wall-clock oracle: $name', ({ spec }) => {
  const calendar = BusinessCalendar.from(spec);

  it('agrees with a minute-by-minute count of local wall time', () => {
    const random = prng(0xc10c ^ spec.timezone.length);
    const windows = [...DST_STARTS.map((text) => Date.parse(text) - 12 * HOUR)];
    for (let i = 0; i < 6; i += 1) windows.push(YEAR_START + Math.floor((random() * YEAR_MS) / MIN) * MIN);
    for (const from of windows) {
      const to = from + 2 * DAY;
      let openMinutes = 0;
      for (let t = from; t < to; t += MIN) {
        const open = wallClockOpen(spec, t);
        if (open) openMinutes += 1;
        if (t % (17 * MIN) === 0) expect(calendar.isOpen(new Date(t)), new Date(t).toISOString()).toBe(open);
      }
      const counted = calendar.businessTimeBetween(new Date(from), new Date(to));
      expect(counted, new Date(from).toISOString()).toBe(openMinutes * MIN);
    }
  });
});

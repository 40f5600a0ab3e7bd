import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import type { TicketStatus } from '../../src/core/types.js';
import { BusinessCalendar } from '../../src/core/calendar.js';
import { estimateDelay, medianOfMiddle } from '../../src/sla/delay-estimate.js';
import {
  applyChange,
  dueMilestones,
  nextDue,
  usedAt,
  type RecordedMilestone,
  type SlaState,
  type TicketFacts,
} from '../../src/sla/sla-clock.js';
import { noticePoints, SlaPolicies, type SlaPolicy } from '../../src/sla/sla-policy.js';
import { OFFICE, slaConfigJson, STANDARD_POLICY } from './sla-fixture.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/** Berlin wall time as epoch ms. */
function berlin(text: string): number {
  const at = DateTime.fromISO(text, { zone: 'Europe/Berlin' });
  if (!at.isValid) throw new Error(`bad time ${text}`);
  return at.toMillis();
}

function shown(ms: number | null): string | null {
  return ms === null ? null : DateTime.fromMillis(ms, { zone: 'Europe/Berlin' }).toFormat('ccc yyyy-MM-dd HH:mm');
}

function policies(patch?: (cfg: Record<string, any>) => void): SlaPolicies {
  return SlaPolicies.compile(parseConfig(slaConfigJson('/tmp/unused', patch), '/tmp/unused'));
}

const standard = policies().named('standard') as SlaPolicy;

/** Drives a ticket through status changes, the way the store's hook does. */
class Ticket {
  facts: TicketFacts;
  state: SlaState;

  constructor(
    readonly policy: SlaPolicy,
    createdAt: string,
  ) {
    const at = berlin(createdAt);
    this.facts = { status: 'open', createdAt: at, firstResponseAt: null, resolvedAt: null, closedAt: null };
    this.state = applyChange(null, policy, this.facts, at);
  }

  status(status: TicketStatus, at: string): this {
    const now = berlin(at);
    this.facts = {
      ...this.facts,
      status,
      resolvedAt: status === 'resolved' ? now : status === 'closed' ? this.facts.resolvedAt : null,
      closedAt: status === 'closed' ? now : null,
    };
    this.state = applyChange(this.state, this.policy, this.facts, now);
    return this;
  }

  reply(at: string): this {
    const now = berlin(at);
    this.facts = { ...this.facts, firstResponseAt: this.facts.firstResponseAt ?? now };
    this.state = applyChange(this.state, this.policy, this.facts, now);
    return this;
  }

  get firstResponseDue() {
    return shown(this.state.firstResponse.dueAt);
  }

  get resolutionDue() {
    return shown(this.state.resolution.dueAt);
  }
}

describe('due times through status changes (office hours Mon-Fri 09:00-17:00 Berlin, 4h / 3d)', () => {
  it('a new ticket is due after four business hours', () => {
    const t = new Ticket(standard, '2026-03-02T10:00');
    expect(t.firstResponseDue).toBe('Mon 2026-03-02 14:00');
    // 3d = 72 business hours = nine office days, weekend skipped.
    expect(t.resolutionDue).toBe('Fri 2026-03-13 10:00');
  });

  it('a ticket that arrives on Friday afternoon is due on Monday', () => {
    const t = new Ticket(standard, '2026-03-06T16:00');
    expect(t.firstResponseDue).toBe('Mon 2026-03-09 12:00');
  });

  it('a ticket that arrives at night starts counting when the office opens', () => {
    const t = new Ticket(standard, '2026-03-02T22:30');
    expect(t.firstResponseDue).toBe('Tue 2026-03-03 13:00');
  });

  it('pending pauses the clock and keeps the time used; open resumes it', () => {
    const t = new Ticket(standard, '2026-03-02T10:00').status('pending', '2026-03-02T11:00');
    expect(t.state.runningSince).toBeNull();
    expect(t.state.firstResponse.usedMs).toBe(1 * HOUR);
    expect(t.firstResponseDue).toBeNull();
    expect(nextDue(t.state, standard.plan, [], standard.calendar)).toBeNull();

    t.status('open', '2026-03-04T10:00');
    expect(t.firstResponseDue).toBe('Wed 2026-03-04 13:00');
    expect(t.state.resolution.usedMs).toBe(1 * HOUR);
  });

  it('on-hold does not pause the clock', () => {
    const t = new Ticket(standard, '2026-03-02T10:00').status('on-hold', '2026-03-02T11:00');
    expect(t.state.runningSince).toBe(berlin('2026-03-02T11:00'));
    expect(t.firstResponseDue).toBe('Mon 2026-03-02 14:00');
  });

  it('the first agent reply meets the first-response target; resolution keeps running', () => {
    const t = new Ticket(standard, '2026-03-02T10:00').reply('2026-03-02T12:30');
    expect(t.state.firstResponse.metAt).toBe(berlin('2026-03-02T12:30'));
    expect(t.state.firstResponse.usedMs).toBe(2.5 * HOUR);
    expect(t.firstResponseDue).toBeNull();
    expect(t.resolutionDue).toBe('Fri 2026-03-13 10:00');
    // Time after the reply no longer counts against the first response.
    expect(usedAt(t.state, 'first-response', berlin('2026-03-03T16:00'), standard.calendar)).toBe(2.5 * HOUR);
  });

  it('resolving meets resolution; a reply to the resolved ticket starts a new resolution cycle', () => {
    const t = new Ticket(standard, '2026-03-02T10:00').reply('2026-03-02T11:00').status('resolved', '2026-03-03T10:00');
    expect(t.state.resolution.metAt).toBe(berlin('2026-03-03T10:00'));
    expect(t.state.resolution.usedMs).toBe(8 * HOUR);
    expect(t.state.runningSince).toBeNull();

    t.status('open', '2026-03-05T09:00');
    expect(t.state.resolution).toMatchObject({ cycle: 2, usedMs: 0, metAt: null, startedAt: berlin('2026-03-05T09:00') });
    // Nine full office days from Thursday morning.
    expect(t.resolutionDue).toBe('Tue 2026-03-17 17:00');
    // First response stays met.
    expect(t.state.firstResponse.metAt).toBe(berlin('2026-03-02T11:00'));
  });

  it('resolved then closed keeps the resolution time of the resolve', () => {
    const t = new Ticket(standard, '2026-03-02T10:00')
      .status('resolved', '2026-03-02T12:00')
      .status('closed', '2026-03-04T12:00');
    expect(t.state.resolution.metAt).toBe(berlin('2026-03-02T12:00'));
    expect(t.state.resolution.usedMs).toBe(2 * HOUR);
  });

  it('counts real elapsed time across the DST change in a round-the-clock calendar', () => {
    const p = policies((cfg) => (cfg.sla.policies[0].calendar = '24x7')).named('standard') as SlaPolicy;
    // Berlin skips 02:00-03:00 on 2026-03-29: four real hours from 00:30 end at 05:30 local.
    const t = new Ticket(p, '2026-03-29T00:30');
    expect(t.firstResponseDue).toBe('Sun 2026-03-29 05:30');
  });

  it('a policy for another calendar counts its own hours', () => {
    const p = policies((cfg) => {
      cfg.calendars.ny = { timezone: 'America/New_York', hours: { ...OFFICE.hours } };
      cfg.sla.policies[0].calendar = 'ny';
    }).named('standard') as SlaPolicy;
    // Mon 16:00 Berlin is 10:00 in New York.
    const t = new Ticket(p, '2026-03-02T16:00');
    expect(DateTime.fromMillis(t.state.firstResponse.dueAt!, { zone: 'America/New_York' }).toFormat('HH:mm')).toBe('14:00');
  });
});

describe('thresholds', () => {
  it('lays notices out at the share, then every repeat, at most max', () => {
    expect(noticePoints([{ share: 1, repeatMs: 24 * HOUR, max: 3 }], 4 * HOUR)).toEqual([4 * HOUR, 28 * HOUR, 52 * HOUR]);
    expect(noticePoints([{ share: 1, repeatMs: null, max: 3 }], 4 * HOUR)).toEqual([4 * HOUR]);
    // Merged across rules, duplicates once.
    expect(
      noticePoints(
        [
          { share: 1, repeatMs: null, max: 1 },
          { share: 0.5, repeatMs: 2 * HOUR, max: 2 },
        ],
        4 * HOUR,
      ),
    ).toEqual([2 * HOUR, 4 * HOUR]);
  });

  it('falls due in order, each once, and the next due instant follows the records', () => {
    const t = new Ticket(standard, '2026-03-02T10:00');
    const recorded: RecordedMilestone[] = [];
    const step = (at: string) => {
      const due = dueMilestones(t.state, standard.plan, recorded, berlin(at), standard.calendar);
      recorded.push(...due.act, ...due.superseded);
      return due.act.map((m) => `${m.kind} ${m.target} ${m.threshold}`);
    };

    expect(shown(nextDue(t.state, standard.plan, recorded, standard.calendar))).toBe('Mon 2026-03-02 13:12');
    expect(step('2026-03-02T13:11')).toEqual([]);
    expect(step('2026-03-02T13:12')).toEqual(['warning first-response 80%']);
    expect(step('2026-03-02T13:30')).toEqual([]);
    expect(shown(nextDue(t.state, standard.plan, recorded, standard.calendar))).toBe('Mon 2026-03-02 14:00');
    expect(step('2026-03-02T14:00')).toEqual([
      'notice first-response 1',
      'warning first-response 100%',
      'breach first-response 100%',
    ]);
    expect(step('2026-03-02T14:00')).toEqual([]);
    // The second notice after another 24 business hours: three office days later.
    expect(shown(nextDue(t.state, standard.plan, recorded, standard.calendar))).toBe('Thu 2026-03-05 14:00');
  });

  it('after a long outage sends only the latest threshold of each series', () => {
    const t = new Ticket(standard, '2026-03-02T10:00');
    const due = dueMilestones(t.state, standard.plan, [], berlin('2026-03-10T16:00'), standard.calendar);
    expect(due.act.map((m) => `${m.kind} ${m.target} ${m.threshold}`)).toEqual([
      'notice first-response 3',
      'warning first-response 100%',
      'breach first-response 100%',
    ]);
    expect(due.superseded.map((m) => `${m.kind} ${m.threshold}`)).toEqual(['notice 1', 'notice 2', 'warning 80%']);
  });

  it('nothing falls due for a paused or stopped clock', () => {
    const t = new Ticket(standard, '2026-03-02T10:00').status('pending', '2026-03-02T10:30');
    expect(dueMilestones(t.state, standard.plan, [], berlin('2026-03-20T10:00'), standard.calendar).act).toEqual([]);
    t.status('closed', '2026-03-02T11:00');
    expect(nextDue(t.state, standard.plan, [], standard.calendar)).toBeNull();
  });

  it('uses the resolution target once the first response is met', () => {
    const t = new Ticket(standard, '2026-03-02T10:00').reply('2026-03-02T10:30');
    const next = nextDue(t.state, standard.plan, [], standard.calendar);
    // 80% of 72 business hours is 57h36m: seven office days of 8h from Monday 10:00 leave 2h36m for Wednesday.
    expect(shown(next)).toBe('Wed 2026-03-11 11:36');
    const due = dueMilestones(t.state, standard.plan, [], next!, standard.calendar);
    expect(due.act.map((m) => `${m.kind} ${m.target} ${m.threshold} ${m.cycle}`)).toEqual(['warning resolution 80% 1']);
  });

  it('a threshold below the highest recorded one is not sent late', () => {
    const t = new Ticket(standard, '2026-03-02T10:00');
    const recorded: RecordedMilestone[] = [{ kind: 'warning', target: 'first-response', cycle: 0, threshold: '100%' }];
    const due = dueMilestones(t.state, standard.plan, recorded, berlin('2026-03-02T16:00'), standard.calendar);
    expect(due.act.filter((m) => m.kind === 'warning')).toEqual([]);
  });
});

describe('delay estimate', () => {
  const office = BusinessCalendar.from(OFFICE);

  it('uses the median of recent history when there are enough samples, shifted onto business hours', () => {
    const e = estimateDelay({
      history: { samples: 5, medianMs: 2 * HOUR },
      targetMs: 4 * HOUR,
      calendar: office,
      from: berlin('2026-03-06T16:00'),
    });
    expect(e.source).toBe('history');
    // Friday 16:00 plus two business hours is Monday 10:00.
    expect(e.wallMs).toBe(berlin('2026-03-09T10:00') - berlin('2026-03-06T16:00'));
    expect(e.words).toBe('2 days and 18 hours');
  });

  it('falls back to the target with too few samples', () => {
    const e = estimateDelay({
      history: { samples: 4, medianMs: 1 * HOUR },
      targetMs: 4 * HOUR,
      calendar: office,
      from: berlin('2026-03-02T10:00'),
    });
    expect(e).toMatchObject({ source: 'target', businessMs: 4 * HOUR, words: '4 hours', samples: 4 });
  });

  it('takes the mean of the two middle values of an even sample', () => {
    expect(medianOfMiddle([2 * HOUR, 3 * HOUR])).toBe(2.5 * HOUR);
    expect(medianOfMiddle([MIN])).toBe(MIN);
    expect(medianOfMiddle([])).toBeNull();
  });
});

describe('policies', () => {
  it('matches on mailbox and priority, first match wins', () => {
    const p = policies((cfg) => {
      cfg.sla.policies = [
        { ...STANDARD_POLICY, name: 'urgent', match: { mailbox: 'support', priority: 'urgent' }, firstResponse: '1h' },
        STANDARD_POLICY,
      ];
    });
    expect(p.forTicket({ mailbox: 'support', priority: 'urgent' })?.name).toBe('urgent');
    expect(p.forTicket({ mailbox: 'support', priority: 'normal' })?.name).toBe('standard');
    expect(p.forTicket({ mailbox: 'sales', priority: 'normal' })).toBeNull();
  });

  it('sends warnings to the policy address, else the mailbox staff address, else nowhere', () => {
    const withOwn = policies();
    expect(withOwn.staffAddressFor(withOwn.named('standard')!, 'support')).toBe('team@example.com');
    const fallback = policies((cfg) => {
      delete cfg.sla.policies[0].staffAddress;
      cfg.mailboxes[0].staffAddress = 'desk@example.com';
    });
    expect(fallback.staffAddressFor(fallback.named('standard')!, 'support')).toBe('desk@example.com');
    const none = policies((cfg) => delete cfg.sla.policies[0].staffAddress);
    expect(none.staffAddressFor(none.named('standard')!, 'support')).toBeNull();
  });

  it('refuses a calendar that cannot run, with its code and the JSON path of the setting', () => {
    // The configuration check finds it now, with the others, rather than the SLA engine at start.
    expect(() => policies((cfg) => (cfg.calendars.office.timezone = 'Mars/Olympus'))).toThrow(
      expect.objectContaining({
        code: 'TICKETD_CONFIG_INVALID',
        problems: [expect.stringMatching(/^calendars\.office\.timezone: /)],
      }),
    );
  });
});

import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { BusinessCalendar } from '../../src/core/calendar.js';
import { planReload } from '../../src/daemon/reload-plan.js';

type Json = Record<string, any>;
const SECRET = 'hunter2-SECRET';

function base(): Json {
  return {
    publicUrl: 'https://help.example.com',
    smtp: { host: 'smtp.example.com', from: 'Support <support@example.com>' },
    mailboxes: [
      {
        name: 'support',
        address: 'support@example.com',
        referencePrefix: 'ACME',
        imap: { host: 'imap.example.com', auth: { user: 'u', pass: SECRET } },
      },
      { name: 'billing', address: 'billing@example.com', referencePrefix: 'BILL' },
    ],
    inbound: { port: 2424, mailbox: 'support' },
  };
}

function plan(change: (c: Json) => void) {
  const next = base();
  change(next);
  return planReload(parseConfig(base(), '/etc/ticketd'), parseConfig(next, '/etc/ticketd'));
}

describe('planReload', () => {
  it('finds nothing to do when nothing changed, and mailboxes are matched by name, not position', () => {
    const p = plan((c) => c.mailboxes.reverse());
    expect(p.applied).toEqual([]);
    expect(p.restartNeeded).toEqual([]);
  });

  it('applies what is read afresh and names, by JSON path, what is bound at start', () => {
    const p = plan((c) => {
      c.http = { port: 8081 };
      c.limits = { acksPerSenderPerHour: 2 };
      c.outbox = { retrySchedule: ['1m'] };
      c.log = { level: 'debug' };
      c.mailboxes[0].imap.host = 'imap2.example.com';
      c.mailboxes[0].aliases = ['help@example.com'];
      c.inbound.port = 2525;
      c.database = './data/other.sqlite';
    });
    expect(p.applied.map((s) => s.path).sort()).toEqual([
      'limits.acksPerSenderPerHour',
      'log.level',
      'mailboxes[0].aliases',
      'outbox.retrySchedule',
    ]);
    expect(p.restartNeeded.map((s) => s.path).sort()).toEqual([
      'database',
      'http.port',
      'inbound.port',
      'mailboxes[0].imap.host',
    ]);
    // Until the restart the daemon runs with what it has bound.
    expect(p.effective.http.port).toBe(8080);
    expect(p.effective.inbound?.port).toBe(2424);
    expect(p.effective.database).toBe('/etc/ticketd/data/ticketd.sqlite');
    expect(p.effective.mailboxes[0]!.imap!.host).toBe('imap.example.com');
    expect(p.effective.mailboxes[0]!.aliases).toEqual(['help@example.com']);
    expect(p.effective.limits.acksPerSenderPerHour).toBe(2);
    expect(JSON.stringify(p.effective)).not.toContain(SECRET);
  });

  it('starts a new mailbox now and keeps a removed one until the restart', () => {
    const p = plan((c) => {
      c.mailboxes.splice(1, 1);
      c.mailboxes.push({ name: 'sales', address: 'sales@example.com', referencePrefix: 'SALE' });
    });
    expect(p.applied).toEqual([{ path: 'mailboxes[1]', mailbox: 'sales' }]);
    expect(p.addedMailboxes.map((m) => m.name)).toEqual(['sales']);
    expect(p.restartNeeded).toEqual([{ path: 'mailboxes[1]', mailbox: 'billing' }]);
    expect(p.effective.mailboxes.map((m) => m.name)).toEqual(['support', 'sales', 'billing']);
  });

  it('carries durations and calendars into the effective config as values, printed as written', () => {
    const p = plan((c) => {
      c.outbox = { retrySchedule: ['1m', '1h 30m'] };
      c.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' } } };
      c.http = { port: 8081 };
    });
    expect(p.applied.map((s) => s.path).sort()).toEqual(['calendars.office', 'outbox.retrySchedule']);
    expect(p.effective.outbox.retrySchedule.map((d) => d.ms)).toEqual([60_000, 90 * 60_000]);
    expect(p.effective.calendars.office).toBeInstanceOf(BusinessCalendar);
    const printed = JSON.parse(JSON.stringify(p.effective));
    expect(printed.outbox.retrySchedule).toEqual(['1m', '1h 30m']);
    expect(printed.calendars.office).toEqual({ timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' }, holidays: [] });
  });

  it('finds no change in durations, shares and calendars read from the same text', () => {
    const sla = (c: Json) => {
      c.calendars = { office: { timezone: 'Europe/Berlin', hours: { mon: '09:00-17:00' } } };
      c.sla = { policies: [{ name: 'std', match: {}, firstResponse: '4h', resolution: '1d 4h', calendar: 'office' }] };
    };
    const running = base();
    sla(running);
    const next = base();
    sla(next);
    const p = planReload(parseConfig(running, '/etc/ticketd'), parseConfig(next, '/etc/ticketd'));
    expect([...p.applied, ...p.restartNeeded]).toEqual([]);
    next.calendars.office.hours.mon = '08:00-16:00';
    const changed = planReload(parseConfig(running, '/etc/ticketd'), parseConfig(next, '/etc/ticketd'));
    expect(changed.applied).toEqual([{ path: 'calendars.office' }]);
  });

  it('treats adding or removing the listener as a restart', () => {
    const p = plan((c) => delete c.inbound);
    expect(p.restartNeeded.map((s) => s.path)).toEqual(['inbound']);
    expect(p.effective.inbound?.port).toBe(2424);
  });
});

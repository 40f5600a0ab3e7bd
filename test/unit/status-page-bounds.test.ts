import { describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import type { TimelineHead } from '../../src/web/status-page-store.js';
import type { TicketRow } from '../../src/store/store.js';
import { LookupLimiter } from '../../src/web/failed-lookup-limiter.js';
import { HISTORY_PAGE_SIZE, MAX_LINE_CHARS, pickHistoryPage, statusView } from '../../src/web/status-page.js';

const T0 = Date.UTC(2026, 2, 2, 10, 0);

function heads(n: number): TimelineHead[] {
  // Shuffled ids and times, as the two tables deliver them.
  return Array.from(
    { length: n },
    (_, i): TimelineHead => ({
      source: i % 3 === 0 ? 'event' : 'message',
      id: n - i,
      type: i % 3 === 0 ? 'status' : 'message',
      at: T0 + i * 1000,
    }),
  ).reverse();
}

describe('pickHistoryPage', () => {
  it('shows the newest page unless asked, in timeline order, and clamps what it is asked', () => {
    const all = heads(25);
    const newest = pickHistoryPage(all, null);
    expect([newest.number, newest.count]).toEqual([3, 3]);
    expect(newest.heads.map((h) => h.at)).toEqual(Array.from({ length: 5 }, (_, i) => T0 + (20 + i) * 1000));
    const first = pickHistoryPage(all, 1);
    expect(first.heads).toHaveLength(HISTORY_PAGE_SIZE);
    expect(first.heads[0]!.at).toBe(T0);
    expect(pickHistoryPage(all, 99).number).toBe(3);
    expect(pickHistoryPage([], null)).toEqual({ heads: [], number: 1, count: 1 });
  });

  it('orders one instant as the page always did: received, the message, then other events', () => {
    const same: TimelineHead[] = [
      { source: 'event', id: 2, type: 'acknowledged', at: T0 },
      { source: 'message', id: 1, type: 'message', at: T0 },
      { source: 'event', id: 1, type: 'received', at: T0 },
    ];
    expect(pickHistoryPage(same, null).heads.map((h) => h.type)).toEqual(['received', 'message', 'acknowledged']);
  });
});

describe('statusView bounds', () => {
  const ticket = {
    id: 1,
    ref: 'ACME-7K3QH9',
    mailbox: 'support',
    status: 'open',
    subject: `S${'s'.repeat(10_000)}`,
    requester: 'jane@customer.example',
    requesterName: 'J'.repeat(1_000),
    replyTo: 'jane@customer.example',
    language: null,
    priority: 'normal',
    onHoldReason: null,
    team: null,
    linkedTo: null,
    createdAt: T0,
    updatedAt: T0,
    firstResponseAt: null,
    resolvedAt: null,
    closedAt: null,
  } as TicketRow;
  const view = (over: { page?: { number: number; count: number } } = {}) =>
    statusView({
      data: {
        ticket,
        messages: [
          {
            id: 1,
            direction: 'in',
            kind: 'request',
            from: 'jane@customer.example',
            text: 'short',
            attachmentNames: Array.from({ length: 10_000 }, (_, i) => `part${i}.bin`),
            at: T0,
            truncated: true,
          },
        ],
        events: [],
        queuePosition: 0,
      },
      promise: null,
      mailboxAddress: 'support@example.com',
      publicUrl: 'https://help.example.com',
      locale: 'en',
      now: new Date(T0),
      ...over,
    });

  it('cuts one-line fields and lists at most 20 file names, counting the rest', () => {
    const v = view();
    expect(v.subject).toHaveLength(MAX_LINE_CHARS);
    expect(v.subject.endsWith('…')).toBe(true);
    expect(v.requesterName).toHaveLength(MAX_LINE_CHARS);
    const [entry] = v.timeline;
    expect(entry?.kind === 'message' && entry.attachments.length).toBe(21);
    expect(entry?.kind === 'message' && entry.attachments.at(-1)).toBe('… (+9980)');
  });

  it('says a message is shortened when the store read only its beginning', () => {
    expect(view().timeline[0]).toMatchObject({ kind: 'message', text: 'short', shortened: true });
  });

  it('links to the neighbouring pages with relative links that never carry the token', () => {
    expect(view({ page: { number: 2, count: 3 } }).history).toEqual({
      paged: true,
      number: 2,
      count: 3,
      earlierHref: '?page=1',
      laterHref: '?page=3',
    });
    expect(view().history).toEqual({ paged: false, number: 1, count: 1, earlierHref: '', laterHref: '' });
  });
});

describe('LookupLimiter', () => {
  it('counts every lookup, valid or not, per client', () => {
    const clock = fixedClock(new Date(T0));
    const limiter = new LookupLimiter(() => 2, clock);
    limiter.record('a');
    limiter.record('a');
    expect(limiter.blockedFor('a')).toBe(60);
    expect(limiter.blockedFor('b')).toBe(0);
  });
});

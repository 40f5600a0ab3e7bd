import { describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/core/clock.js';
import type { TicketStatus } from '../../src/core/types.js';
import type { PublicEvent, PublicMessage, StatusPageData } from '../../src/web/status-page-store.js';
import type { TicketRow } from '../../src/store/store.js';
import { FailedLookupLimiter } from '../../src/web/failed-lookup-limiter.js';
import { MAX_MESSAGE_CHARS, statusView, stripQuotedHistory, type StatusViewInput } from '../../src/web/status-page.js';

const T0 = Date.UTC(2026, 2, 2, 10, 0);

describe('stripQuotedHistory', () => {
  it('drops lines quoted with ">" and keeps the rest', () => {
    expect(stripQuotedHistory('Thanks, that worked.\n> Did you restart it?\n>> earlier\nBest, Jane')).toBe(
      'Thanks, that worked.\nBest, Jane',
    );
  });

  it('keeps an interleaved answer between quoted lines', () => {
    expect(stripQuotedHistory('> Which floor?\nThe 3rd.\n> Which model?\nLaserJet 4')).toBe('The 3rd.\nLaserJet 4');
  });

  it('cuts everything from an "On … wrote:" line', () => {
    const text =
      'Still jams.\r\n\r\nOn Mon, 2 Mar 2026 at 10:00, ACME Support <support@example.com> wrote:\r\nWe replaced the roller.\r\nMore history';
    expect(stripQuotedHistory(text)).toBe('Still jams.');
  });

  it('cuts an attribution wrapped onto two lines', () => {
    const text =
      'New detail here.\nOn Mon, Mar 2, 2026 at 10:00 AM Some Very Long Sender Name <\nsupport@example.com> wrote:\nold text';
    expect(stripQuotedHistory(text)).toBe('New detail here.');
  });

  it('cuts a German attribution', () => {
    expect(stripQuotedHistory('Danke!\nAm 02.03.2026 um 10:00 schrieb ACME Support <support@example.com>:\nalt')).toBe('Danke!');
  });

  it('cuts at -----Original Message----- and at an Outlook separator', () => {
    expect(stripQuotedHistory('See attached.\n-----Original Message-----\nFrom: Support\nold')).toBe('See attached.');
    expect(stripQuotedHistory('See attached.\n________________________________\nFrom: Support <support@example.com>\nold')).toBe(
      'See attached.',
    );
  });

  it('cuts at the "-- " signature delimiter, where our replies carry the status link', () => {
    expect(
      stripQuotedHistory('We replaced the roller.\n\n-- \nReference: ACME-7K3QH9\nStatus: https://help.example.com/t/abc'),
    ).toBe('We replaced the roller.');
  });

  it('leaves text without history alone, apart from surrounding blank lines', () => {
    expect(stripQuotedHistory('\n\nLine one\n\n\n\nLine two -- with dashes\nI wrote: this\n\n')).toBe(
      'Line one\n\nLine two -- with dashes\nI wrote: this',
    );
  });
});

function ticket(over: Partial<TicketRow> = {}): TicketRow {
  return {
    id: 1,
    ref: 'ACME-7K3QH9',
    mailbox: 'support',
    status: 'open',
    subject: 'Printer jams',
    requester: 'jane@customer.example',
    requesterName: 'Jane Customer',
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
    ...over,
  };
}

function message(over: Partial<PublicMessage>): PublicMessage {
  return {
    id: 1,
    direction: 'in',
    kind: 'request',
    from: 'jane@customer.example',
    text: 'It jams.',
    attachmentNames: [],
    at: T0,
    ...over,
  };
}

function event(id: number, type: string, at: number, detail: Record<string, unknown> = {}): PublicEvent {
  return { id, type, detail, at };
}

function input(data: Partial<StatusPageData> = {}, over: Partial<StatusViewInput> = {}): StatusViewInput {
  return {
    data: { ticket: ticket(), messages: [], events: [], queuePosition: 3, ...data },
    promise: null,
    mailboxAddress: 'support@example.com',
    publicUrl: 'https://help.example.com',
    locale: 'en',
    now: new Date(T0 + 3_600_000),
    ...over,
  };
}

describe('statusView', () => {
  it('orders the timeline: received, the request itself, acknowledged, then later events and replies', () => {
    const view = statusView(
      input({
        messages: [
          message({ id: 1 }),
          message({ id: 5, direction: 'out', kind: 'agent-reply', from: 'support@example.com', text: 'Fixed.', at: T0 + 2000 }),
        ],
        events: [
          event(2, 'acknowledged', T0),
          event(1, 'received', T0),
          event(3, 'status', T0 + 1000, { status: 'pending' }),
          event(4, 'handoff', T0 + 500, { team: 'Hardware' }),
        ],
      }),
    );
    expect(view.timeline.map((e) => e.kind)).toEqual(['received', 'message', 'acknowledged', 'handoff', 'status', 'message']);
    expect(view.timeline[3]).toMatchObject({ kind: 'handoff', team: 'Hardware' });
    expect(view.timeline[5]).toMatchObject({ kind: 'message', fromUs: true, text: 'Fixed.' });
  });

  it('drops event types the page does not know, even when marked public', () => {
    const view = statusView(
      input({
        events: [event(1, 'delivery-failure', T0), event(2, 'links-revoked', T0), event(3, 'note', T0, { text: 'internal' })],
      }),
    );
    expect(view.timeline).toEqual([]);
  });

  it('shows a status once when it was recorded twice in a row, and again after a change', () => {
    const view = statusView(
      input({
        events: [
          event(1, 'status', T0, { status: 'on-hold', reason: 'spare part' }),
          event(2, 'status', T0 + 1000, { status: 'on-hold', reason: 'spare part' }),
          event(3, 'status', T0 + 2000, { status: 'on-hold', reason: 'courier' }),
          event(4, 'status', T0 + 3000, { status: 'pending' }),
          event(5, 'status', T0 + 4000, { status: 'pending' }),
          event(6, 'reopened', T0 + 5000),
          event(7, 'status', T0 + 6000, { status: 'pending' }),
        ],
      }),
    );
    expect(view.timeline.map((e) => (e.kind === 'status' ? `${e.newStatus}:${e.reason}` : e.kind))).toEqual([
      'on-hold:spare part',
      'on-hold:courier',
      'pending:',
      'reopened',
      'pending:',
    ]);
  });

  it('shows the queue only while the ticket waits in it', () => {
    const queued = (status: TicketStatus) => statusView(input({ ticket: ticket({ status }), queuePosition: 12 })).queue;
    expect(queued('open')).toEqual({ ahead: 12 });
    expect(queued('on-hold')).toEqual({ ahead: 12 });
    expect(queued('pending')).toBeNull();
    expect(queued('resolved')).toBeNull();
    expect(queued('closed')).toBeNull();
  });

  it('gives the on-hold reason only while on hold, and the SLA promise when there is one', () => {
    const held = statusView(
      input(
        { ticket: ticket({ status: 'on-hold', onHoldReason: 'waiting for a spare part' }) },
        { promise: { target: 'resolution', due: new Date(T0 + 86_400_000) } },
      ),
    );
    expect(held.onHoldReason).toBe('waiting for a spare part');
    // ICU puts a narrow no-break space before AM.
    expect(held.promise).toEqual({
      target: 'resolution',
      due: { text: expect.stringMatching(/^Mar 3, 2026, 10:00\sAM UTC$/), iso: '2026-03-03T10:00:00.000Z' },
    });
    expect(held.hasNextSteps).toBe(true);
    const open = statusView(input({ ticket: ticket({ status: 'pending', onHoldReason: 'stale' }) }));
    expect(open.onHoldReason).toBe('');
    expect(open.promise).toBeNull();
    expect(open.hasNextSteps).toBe(false);
  });

  it('formats dates in the locale of the page', () => {
    expect(statusView(input({}, { locale: 'de' })).receivedAt.text).toBe('2. März 2026, 10:00 UTC');
  });

  it('labels who wrote a message without exposing the requester address', () => {
    const view = statusView(
      input({
        messages: [
          message({ id: 1, from: 'jane@customer.example' }),
          message({ id: 2, from: 'boss@customer.example', kind: 'reply' }),
          message({ id: 3, direction: 'out', kind: 'agent-reply', from: 'support@example.com' }),
        ],
      }),
    );
    expect(view.timeline.map((e) => (e.kind === 'message' ? [e.fromUs, e.fromRequester, e.from] : null))).toEqual([
      [false, true, ''],
      [false, false, 'boss@customer.example'],
      [true, false, ''],
    ]);
  });

  it('strips quoted history, control characters and other status links from message text', () => {
    const text =
      'New info\u0000 here https://help.example.com/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ok\n> quoted\nOn Mon, 2 Mar 2026, X <x@y> wrote:\nold';
    const [entry] = statusView(input({ messages: [message({ text })] })).timeline;
    expect(entry).toMatchObject({ kind: 'message', text: 'New info here https://help.example.com/t/… ok' });
  });

  it('cuts very long messages and says so', () => {
    const [entry] = statusView(input({ messages: [message({ text: 'x'.repeat(MAX_MESSAGE_CHARS + 10) })] })).timeline;
    expect(entry).toMatchObject({ kind: 'message', shortened: true });
    expect(entry?.kind === 'message' && entry.text.length).toBe(MAX_MESSAGE_CHARS);
  });

  it('keeps one-line fields on one line', () => {
    const view = statusView(input({ ticket: ticket({ subject: 'Hello\r\nSet-Cookie: x=1', requesterName: 'Eve\n<b>' }) }));
    expect(view.subject).toBe('Hello Set-Cookie: x=1');
    expect(view.requesterName).toBe('Eve <b>');
  });

  it('builds the mailto link with the reference as subject', () => {
    expect(statusView(input()).replyMailto).toBe('mailto:support@example.com?subject=%5BACME-7K3QH9%5D');
  });
});

describe('FailedLookupLimiter', () => {
  it('blocks a client at the limit for the rest of the minute, and only that client', () => {
    const clock = fixedClock(new Date(T0));
    const limiter = new FailedLookupLimiter(() => 3, clock);
    for (let i = 0; i < 3; i++) {
      expect(limiter.blockedFor('10.0.0.1')).toBe(0);
      limiter.recordFailure('10.0.0.1');
      clock.advance(1000);
    }
    expect(limiter.blockedFor('10.0.0.1')).toBe(57);
    expect(limiter.blockedFor('10.0.0.2')).toBe(0);
    clock.advance(56_000);
    expect(limiter.blockedFor('10.0.0.1')).toBe(1);
    clock.advance(1000);
    // The first failure left the window: one more try is allowed.
    expect(limiter.blockedFor('10.0.0.1')).toBe(0);
    limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedFor('10.0.0.1')).toBeGreaterThan(0);
  });

  it('reads the limit on every check, so a config reload applies at once', () => {
    const clock = fixedClock(new Date(T0));
    let limit = 5;
    const limiter = new FailedLookupLimiter(() => limit, clock);
    limiter.recordFailure('c');
    limiter.recordFailure('c');
    expect(limiter.blockedFor('c')).toBe(0);
    limit = 2;
    expect(limiter.blockedFor('c')).toBe(60);
  });
});

import { describe, expect, it } from 'vitest';
import type { Classification, ParsedMessage } from '../../src/core/types.js';
import { decideThread, type ThreadContext, type TicketSnapshot } from '../../src/thread/decide-thread.js';
import { newReference, normalizeCode, parseReference, referencesInSubject } from '../../src/thread/reference.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const DAY = 86_400_000;
const rules = { reopenWindowDays: 14, acksPerSenderPerHour: 5, ticketsPerSenderPerHour: 10 };

function msg(from = 'jane@customer.example'): ParsedMessage {
  return {
    messageId: 'x@customer.example',
    inReplyTo: [],
    references: [],
    subject: 'Help',
    from: { address: from, name: '' },
    replyTo: [],
    to: [],
    cc: [],
    returnPath: null,
    date: null,
    headers: new Map(),
    text: '',
    textFromHtml: false,
    attachments: [],
    language: null,
    contentType: 'text/plain',
    report: null,
    size: 1,
    sha256: 'aa',
  };
}

const request: Classification = { kind: 'request', mayAutoReply: true, suppressReason: null, bounce: null };

function ticket(over: Partial<TicketSnapshot> = {}): TicketSnapshot {
  return { id: 7, ref: 'ACME-7K3QH9', status: 'open', participants: ['jane@customer.example'], closedAt: null, ...over };
}

function ctx(over: Partial<ThreadContext> = {}): ThreadContext {
  return { byMessageId: [], byReference: [], acksLastHour: 0, ticketsLastHour: 0, senderSuppressed: false, now: NOW, ...over };
}

describe('decideThread', () => {
  it('opens a ticket with an acknowledgement when nothing matches', () => {
    expect(decideThread(msg(), request, ctx(), rules)).toEqual({
      action: 'new-ticket',
      linkTo: null,
      ackSuppressedBy: null,
      reason: 'new',
    });
  });

  it('threads a participant by header or by tag, header first', () => {
    const byHeader = ticket({ id: 1 });
    const byTag = ticket({ id: 2 });
    expect(decideThread(msg(), request, ctx({ byMessageId: [byHeader], byReference: [byTag] }), rules)).toMatchObject({
      action: 'thread',
      ticketId: 1,
      newStatus: null,
    });
    expect(decideThread(msg(), request, ctx({ byReference: [byTag] }), rules)).toMatchObject({ action: 'thread', ticketId: 2 });
  });

  it('gives a non-participant a linked ticket of their own', () => {
    expect(decideThread(msg('mallory@evil.example'), request, ctx({ byReference: [ticket()] }), rules)).toEqual({
      action: 'new-ticket',
      linkTo: 7,
      ackSuppressedBy: null,
      reason: 'not-a-participant',
    });
  });

  it('quarantines an answer to a staff notice, even from a participant, but never a bounce of one', () => {
    // Staff mail never reaches this stage: an answer to a notice here is from someone not trusted as staff.
    for (const from of ['mallory@evil.example', 'jane@customer.example']) {
      expect(decideThread(msg(from), request, ctx({ byMessageId: [ticket()], staffNoticeAnswered: 7 }), rules)).toEqual({
        action: 'quarantine',
        ticketId: 7,
        reason: 'staff-notice-answer-not-from-staff',
      });
    }
    const bounce: Classification = { kind: 'bounce', mayAutoReply: false, suppressReason: 'bounce', bounce: null };
    expect(decideThread(msg(), bounce, ctx({ byMessageId: [ticket()], staffNoticeAnswered: 7 }), rules)).toMatchObject({
      action: 'record',
      reason: 'bounce',
    });
  });

  it('keeps an out-of-office or auto-reply to a staff notice without a ticket, and out of the quarantine', () => {
    for (const kind of ['out-of-office', 'auto-reply'] as const) {
      const auto: Classification = { kind, mayAutoReply: false, suppressReason: kind, bounce: null };
      expect(decideThread(msg('hardware-team@example.com'), auto, ctx({ staffNoticeAnswered: 7 }), rules)).toEqual({
        action: 'ignore',
        reason: 'auto-reply-to-staff-notice',
      });
    }
  });

  it('reopens pending and resolved tickets, and closed ones only inside the window', () => {
    for (const status of ['pending', 'resolved'] as const) {
      expect(decideThread(msg(), request, ctx({ byMessageId: [ticket({ status })] }), rules)).toMatchObject({
        action: 'thread',
        newStatus: 'open',
      });
    }
    const inside = ticket({ status: 'closed', closedAt: NOW - 14 * DAY });
    expect(decideThread(msg(), request, ctx({ byMessageId: [inside] }), rules)).toMatchObject({
      action: 'thread',
      newStatus: 'open',
      reason: 'reopened',
    });
    const outside = ticket({ status: 'closed', closedAt: NOW - 14 * DAY - 1 });
    expect(decideThread(msg(), request, ctx({ byMessageId: [outside] }), rules)).toMatchObject({
      action: 'new-ticket',
      linkTo: 7,
      reason: 'closed-outside-window',
    });
  });

  it('records bounces only on the ticket of the bounced message, never opening one', () => {
    const bounce: Classification = {
      kind: 'bounce',
      mayAutoReply: false,
      suppressReason: 'mailer-daemon',
      bounce: { originalMessageIds: [], recipients: [] },
    };
    expect(decideThread(msg('mailer-daemon@mx.example'), bounce, ctx({ byMessageId: [ticket()] }), rules)).toEqual({
      action: 'record',
      ticketId: 7,
      reason: 'bounce',
    });
    expect(decideThread(msg('mailer-daemon@mx.example'), bounce, ctx({ byReference: [ticket()] }), rules)).toEqual({
      action: 'record',
      ticketId: null,
      reason: 'bounce-unmatched',
    });
  });

  it('records an out-of-office on its ticket without a status change, and ignores a stray one', () => {
    const ooo: Classification = { kind: 'out-of-office', mayAutoReply: false, suppressReason: 'auto-submitted', bounce: null };
    expect(decideThread(msg(), ooo, ctx({ byMessageId: [ticket({ status: 'pending' })] }), rules)).toEqual({
      action: 'record',
      ticketId: 7,
      reason: 'out-of-office',
    });
    expect(decideThread(msg(), ooo, ctx(), rules)).toEqual({ action: 'ignore', reason: 'out-of-office-unmatched' });
  });

  it('ignores our own mail coming back', () => {
    const own: Classification = { kind: 'auto-reply', mayAutoReply: false, suppressReason: 'own-address', bounce: null };
    expect(decideThread(msg('support@example.com'), own, ctx({ byMessageId: [ticket()] }), rules)).toEqual({
      action: 'ignore',
      reason: 'own-address',
    });
  });

  it('still opens tickets past the rate limits but stops acknowledging them', () => {
    expect(decideThread(msg(), request, ctx({ acksLastHour: 5 }), rules)).toMatchObject({
      action: 'new-ticket',
      ackSuppressedBy: 'ack-rate-limited',
    });
    expect(decideThread(msg(), request, ctx({ ticketsLastHour: 10 }), rules)).toMatchObject({
      action: 'new-ticket',
      ackSuppressedBy: 'ticket-rate-limited',
    });
    expect(decideThread(msg(), request, ctx({ senderSuppressed: true }), rules)).toMatchObject({
      ackSuppressedBy: 'sender-suppressed',
    });
    const bulk: Classification = { kind: 'auto-reply', mayAutoReply: false, suppressReason: 'precedence-bulk', bounce: null };
    expect(decideThread(msg(), bulk, ctx(), rules)).toMatchObject({ action: 'new-ticket', ackSuppressedBy: 'precedence-bulk' });
  });
});

describe('references', () => {
  it('makes prefix plus six Crockford base32 characters', () => {
    for (let i = 0; i < 200; i++) expect(newReference('ACME')).toMatch(/^ACME-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{6}$/);
  });

  it('reads tags case-insensitively, tolerant of O/0 and I/L/1, only for known prefixes', () => {
    expect(referencesInSubject('Re: [acme-7k3qh9] help', ['ACME'])).toEqual(['ACME-7K3QH9']);
    expect(referencesInSubject('Re: [ACME-OIL234]', ['ACME'])).toEqual(['ACME-011234']);
    expect(referencesInSubject('[ ACME - 7K3QH9 ] and [ACME-7K3QH9]', ['ACME'])).toEqual(['ACME-7K3QH9']);
    expect(referencesInSubject('[OTHER-7K3QH9]', ['ACME'])).toEqual([]);
    expect(referencesInSubject('[ACME-7K3QU9]', ['ACME'])).toEqual([]); // U is not in the alphabet
    expect(referencesInSubject('ACME-7K3QH9 without brackets', ['ACME'])).toEqual([]);
  });

  it('parses a reference typed on the command line', () => {
    expect(parseReference(' [acme-7k3qho] ')).toBe('ACME-7K3QH0');
    expect(parseReference('ACME-123')).toBeNull();
    expect(normalizeCode('abcdef')).toBe('ABCDEF');
    expect(normalizeCode('abcdeu')).toBeNull();
  });
});

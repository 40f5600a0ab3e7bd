import type { MessageSummary, TicketDetail, TicketEvent } from '../store/store.js';

type Entry = { at: number; order: number; lines: string[] };

/**
 * The ticket as staff read it in a terminal: the fields, then the whole
 * conversation oldest first (newest last, next to the prompt), each message
 * with its text, internal notes and messages the customer never saw marked
 * internal, and the other events as one line each where they happened.
 */
export function ticketText(detail: TicketDetail): string {
  const { messages, events, handoffs, tags, rating, team: _alias, ...head } = detail;
  const out: string[] = [];
  const rated = rating ? `${rating.score}/5${rating.comment ? ` ${JSON.stringify(rating.comment)}` : ''}` : '';
  for (const [k, v] of Object.entries({ ...head, tags: tags.join(' '), handoffs: handoffs.length, rating: rated }))
    out.push(`${k.padEnd(13)} ${v ?? ''}`);
  const entries: Entry[] = [
    ...messages.map((m, i): Entry => ({ at: Date.parse(m.date), order: i, lines: messageLines(m) })),
    ...events.map((e, i): Entry => ({ at: e.at, order: messages.length + i, lines: eventLines(e) })),
  ];
  // Messages carry their sent date; a tie keeps messages before the events they caused.
  entries.sort((a, b) => a.at - b.at || a.order - b.order);
  for (const e of entries) out.push('', ...e.lines);
  return `${out.join('\n')}\n`;
}

function messageLines(m: MessageSummary): string[] {
  const who = m.direction === 'in' ? `from ${m.from}` : `to ${m.to.join(', ')}`;
  const mark = m.public ? '' : '  internal';
  return [
    `=== ${m.date}  ${m.direction === 'in' ? 'in ' : 'out'}  ${m.kind}  ${who}${mark}`,
    `Subject: ${m.subject}`,
    '',
    m.text.replace(/\s+$/, ''),
  ];
}

function eventLines(e: TicketEvent): string[] {
  const at = new Date(e.at).toISOString();
  const { text, ...rest } = e.detail;
  const detail = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  // The line as `tickets show` has always printed it, so scripts that grep it keep working.
  const head = `--- ${at}  ${e.type.padEnd(16)} ${(e.public ? 'public' : 'internal').padEnd(9)} ${detail.join(' ')}`.trimEnd();
  // A note is what the next person reads: written out in full, under its heading.
  return typeof text === 'string' ? [head, text.replace(/\s+$/, '')] : [head];
}

import EmailReplyParser from 'email-reply-parser';
import { ANSWER_NAME, TICKET_STATUSES, type TicketStatus } from '../core/types.js';
import type { StaffCommand, StaffReply } from '../store/store.js';

const COMMAND_LINE = /^#([a-z]+)\b[ \t]*(.*)$/i;

/**
 * Reads a staff member's reply. Its new text is what the mail client wrote
 * above the quoted history (email-reply-parser cuts "On … wrote:", "Am …
 * schrieb", "-----Original Message-----", Outlook headers, `>` lines and the
 * signature). Lines starting with `#` at the top are commands, one per line:
 *
 * - `#note [text]` the mail is an internal note (the rest of the line and the
 *   text below), not sent to the customer;
 * - `#status STATUS [reason]`, e.g. `#status on-hold waiting for spare part`;
 * - `#assign QUEUE-OR-ADDRESS note` hands the ticket on (the note is the rest
 *   of the line and the text below);
 * - `#resolve`;
 * - `#answer NAME` sends the vetted answer NAME (templates/answers/) to the
 *   customer, after the text below; it cannot go with `#note` or `#assign`,
 *   whose text stays internal.
 *
 * An unknown command or a malformed one is a problem, and a mail with a
 * problem does nothing but say so: half a command list is never carried out.
 */
export function readStaffReply(text: string): StaffReply {
  const fresh = new EmailReplyParser().parseReply(text.replace(/\r\n?/g, '\n'));
  const lines = fresh.split('\n');
  const commands: StaffCommand[] = [];
  const problems: string[] = [];
  let i = 0;
  while (i < lines.length && lines[i]!.trim() === '') i++;
  const inline: string[] = [];
  for (; i < lines.length; i++) {
    const m = COMMAND_LINE.exec(lines[i]!.trim());
    if (!m) break;
    const word = m[1]!.toLowerCase();
    const rest = m[2]!.trim();
    switch (word) {
      case 'note':
        commands.push({ kind: 'note' });
        if (rest) inline.push(rest);
        break;
      case 'resolve':
        commands.push({ kind: 'resolve' });
        if (rest) inline.push(rest);
        break;
      case 'status': {
        const [status = '', ...reason] = rest.split(/\s+/);
        if (!(TICKET_STATUSES as readonly string[]).includes(status.toLowerCase())) {
          problems.push(`#status needs one of ${TICKET_STATUSES.join(', ')}, got ${JSON.stringify(status)}`);
        } else {
          const s = status.toLowerCase() as TicketStatus;
          if (s !== 'on-hold' && reason.length > 0) problems.push('#status takes a reason only with on-hold');
          else commands.push({ kind: 'status', status: s, reason: reason.join(' ') || null });
        }
        break;
      }
      case 'assign': {
        const [target = '', ...note] = rest.split(/\s+/);
        if (!target) problems.push('#assign needs a queue or an address');
        else commands.push({ kind: 'assign', target, note: note.join(' ') });
        break;
      }
      case 'answer': {
        const name = rest.toLowerCase();
        if (!ANSWER_NAME.test(name)) problems.push(`#answer needs one answer name, got ${JSON.stringify(rest)}`);
        else commands.push({ kind: 'answer', name });
        break;
      }
      default:
        problems.push(`unknown command #${word}`);
    }
  }
  const answers = commands.some((c) => c.kind === 'answer');
  if (answers && commands.some((c) => c.kind === 'note' || c.kind === 'assign')) {
    problems.push('#answer sends text to the customer; it cannot go with #note or #assign, whose text stays internal');
  }
  const below = lines.slice(i).join('\n').trim();
  const body = [inline.join('\n'), below].filter((p) => p !== '').join('\n\n');
  // An assign's note is its line and the text below it.
  for (const c of commands) if (c.kind === 'assign') c.note = [c.note, below].filter((p) => p !== '').join('\n\n');
  return { commands, body, problems };
}

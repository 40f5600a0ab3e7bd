import type { Classification, ParsedMessage } from '../core/types.js';
import type { ThreadContext, ThreadRules, ThreadVerdict } from '../store/store.js';

// The facts the store reads and the verdict it records are the store's
// contract (the store runs this stage, given to it when it is made).
export type { ThreadContext, ThreadRules, ThreadVerdict, TicketSnapshot } from '../store/store.js';

const DAY_MS = 86_400_000;

/** The quarantine reason of an answer to a staff notice from an address not trusted as staff. */
export const STAFF_NOTICE_ANSWER = 'staff-notice-answer-not-from-staff';

/**
 * Decides where a message goes. Pure: the store reads the context inside the
 * intake transaction and records the verdict in the same transaction.
 */
export function decideThread(msg: ParsedMessage, cls: Classification, ctx: ThreadContext, rules: ThreadRules): ThreadVerdict {
  const sender = msg.from?.address ?? '';
  // A reference in the subject is what a customer quotes deliberately; a
  // header match is what their mail program added. Headers win because they
  // cannot be mistyped, and the tag catches replies from a fresh mail.
  const candidate = ctx.byMessageId[0] ?? ctx.byReference[0] ?? null;

  if (cls.suppressReason === 'own-address' || cls.suppressReason === 'own-message-id') {
    return { action: 'ignore', reason: cls.suppressReason };
  }

  if (cls.kind === 'bounce') {
    // A bounce is matched only through the message that bounced, which is
    // always one of ours; a tag in a bounce subject could be anybody's.
    const bounced = ctx.byMessageId[0] ?? null;
    return { action: 'record', ticketId: bounced?.id ?? null, reason: bounced ? 'bounce' : 'bounce-unmatched' };
  }

  if (ctx.staffNoticeAnswered != null) {
    // A staff member's out-of-office or a list's auto-reply to a notice is
    // nothing an operator needs to look at: kept, never a ticket.
    if (cls.kind === 'out-of-office' || cls.kind === 'auto-reply')
      return { action: 'ignore', reason: 'auto-reply-to-staff-notice' };
    // A notice holds the request, internal notes and handoff notes: a ticket
    // made of this answer would quote them back to its sender, and acknowledge
    // and announce it. An operator decides (a staff address missing from the
    // config is the harmless case).
    return { action: 'quarantine', ticketId: ctx.staffNoticeAnswered, reason: STAFF_NOTICE_ANSWER };
  }

  const isParticipant = candidate?.participants.includes(sender) === true;

  if (cls.kind === 'out-of-office') {
    // Recorded where it belongs, but it never reopens or starts anything.
    return isParticipant
      ? { action: 'record', ticketId: candidate.id, reason: 'out-of-office' }
      : { action: 'ignore', reason: 'out-of-office-unmatched' };
  }

  if (candidate !== null && isParticipant) {
    switch (candidate.status) {
      case 'closed': {
        const closedAt = candidate.closedAt ?? 0;
        if (ctx.now - closedAt <= rules.reopenWindowDays * DAY_MS) {
          return { action: 'thread', ticketId: candidate.id, newStatus: 'open', reason: 'reopened' };
        }
        return newTicket(cls, ctx, rules, candidate.id, 'closed-outside-window');
      }
      case 'resolved':
        return { action: 'thread', ticketId: candidate.id, newStatus: 'open', reason: 'reopened' };
      case 'pending':
        // The customer answered what we were waiting for.
        return { action: 'thread', ticketId: candidate.id, newStatus: 'open', reason: 'customer-replied' };
      default:
        return { action: 'thread', ticketId: candidate.id, newStatus: null, reason: 'reply' };
    }
  }

  if (candidate !== null) {
    // Someone outside the conversation quoted a reference: they get a ticket
    // of their own, linked, and learn nothing of the other one.
    return newTicket(cls, ctx, rules, candidate.id, 'not-a-participant');
  }
  return newTicket(cls, ctx, rules, null, 'new');
}

function newTicket(
  cls: Classification,
  ctx: ThreadContext,
  rules: ThreadRules,
  linkTo: number | null,
  reason: string,
): ThreadVerdict {
  return { action: 'new-ticket', linkTo, ackSuppressedBy: ackSuppressedBecause(cls, ctx, rules), reason };
}

/**
 * Why a new ticket gets no acknowledgement, or null when it does. The
 * sender's own markers (RFC 3834, bounces) come first, then what the pipeline
 * found about the recipient and the sender's authentication, then the limits,
 * every one of them counted on the address the reply would go to, and last
 * the global cap, which only a flood reaches.
 */
function ackSuppressedBecause(cls: Classification, ctx: ThreadContext, rules: ThreadRules): string | null {
  if (!cls.mayAutoReply) return cls.suppressReason ?? 'not-auto-answerable';
  if (ctx.replyWithheld) return ctx.replyWithheld;
  if (ctx.senderSuppressed) return 'sender-suppressed';
  if (ctx.acksLastHour >= rules.acksPerSenderPerHour) return 'ack-rate-limited';
  if (ctx.ticketsLastHour >= rules.ticketsPerSenderPerHour) return 'ticket-rate-limited';
  if (rules.autoRepliesPerHour !== undefined && (ctx.autoRepliesLastHour ?? 0) >= rules.autoRepliesPerHour)
    return 'auto-reply-cap';
  return null;
}

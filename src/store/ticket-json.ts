// The ticket as data, one shape for `tickets show --json` and the JSON API's
// `GET /api/v1/tickets/:ref`, so a script can move between them unchanged.

import type { TicketDetail } from './store.js';

/** What `tickets show --json` prints: every message with its text, and the ticket's events. */
export function ticketJson(detail: TicketDetail) {
  const { messages, events, handoffs, rating, ...head } = detail;
  return {
    ...head,
    rating: rating ? { score: rating.score, comment: rating.comment, at: new Date(rating.at).toISOString() } : null,
    handoffs: handoffs.map((h) => ({
      from: h.fromOwner ?? h.fromQueue,
      to: h.toOwner ?? h.toQueue,
      by: h.by,
      note: h.note,
      at: new Date(h.at).toISOString(),
      fromQueue: h.fromQueue,
      toQueue: h.toQueue,
      fromOwner: h.fromOwner,
      toOwner: h.toOwner,
    })),
    messages: messages.map(({ direction, kind, from, to, subject, messageId, date, text, public: isPublic }) => ({
      direction,
      kind,
      from,
      to,
      subject,
      messageId,
      date,
      public: isPublic,
      text,
    })),
    events: events.map((e) => ({ type: e.type, public: e.public, at: new Date(e.at).toISOString(), detail: e.detail })),
  };
}

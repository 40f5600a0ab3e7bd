// The requester's rating of a ticket, written once for every caller (the
// status page's form stores it, `tickets show` and the report read it):
// what a rating is, which tickets take one, and that a second replaces the
// first. Queries are in ratings.sql.

import type { TicketStatus } from '../core/types.js';
import type { SqlSession } from './sql-engine.js';
import type { TicketRating } from './store.js';
import { TicketRecords } from './ticket-records.js';

export const RATING_SCORES = [1, 2, 3, 4, 5] as const;
/** A comment is a few sentences; anything longer is cut rather than refused, so nobody loses what they wrote. */
export const RATING_COMMENT_CHARS = 2000;

export type RatingInput = { ok: true; score: number; comment: string } | { ok: false; reason: 'bad-score' };

export type RateOutcome = { ok: true; rating: TicketRating; replaced: boolean } | { ok: false; reason: 'not-resolved' };

/** Only a resolved (or since closed) ticket is rated: the customer judges what was done. */
export function takesRating(status: TicketStatus): boolean {
  return status === 'resolved' || status === 'closed';
}

/** A submitted rating as the form sends it: the score a whole number 1 to 5, the comment optional text. */
export function readRating(score: unknown, comment: unknown): RatingInput {
  const n = typeof score === 'string' && /^[1-5]$/.test(score.trim()) ? Number(score.trim()) : Number.NaN;
  if (!(RATING_SCORES as readonly number[]).includes(n)) return { ok: false, reason: 'bad-score' };
  const text = typeof comment === 'string' ? comment.replace(/\r\n?/g, '\n').trim() : '';
  return { ok: true, score: n, comment: [...text].slice(0, RATING_COMMENT_CHARS).join('') };
}

export async function ratingOf(db: SqlSession, ticketId: number): Promise<TicketRating | null> {
  return (await db.get<TicketRating>('rating-of-ticket', [ticketId])) ?? null;
}

/**
 * Stores a rating of a ticket that takes one; run inside a transaction. It
 * replaces an earlier rating, and leaves an internal `rated` event either way.
 */
export async function rateTicket(
  db: SqlSession,
  ticketId: number,
  rating: { score: number; comment: string },
  now: number,
): Promise<RateOutcome> {
  const records = new TicketRecords(db);
  const t = await records.ticketRow(ticketId);
  if (!t || !takesRating(t.status)) return { ok: false, reason: 'not-resolved' };
  const replaced = (await ratingOf(db, ticketId)) !== null;
  await db.run('upsert-rating', { ticketId, score: rating.score, comment: rating.comment, now });
  await records.event(ticketId, 'rated', false, { score: rating.score, comment: rating.comment, replaced }, now);
  return { ok: true, rating: { score: rating.score, comment: rating.comment, at: now }, replaced };
}

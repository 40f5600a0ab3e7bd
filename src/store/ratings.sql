-- Named queries of a ticket's rating (src/store/ratings.ts).

-- A second rating replaces the first.
-- name: upsert-rating
INSERT INTO ratings (ticket_id, score, comment, rated_at) VALUES (@ticketId, @score, @comment, @now)
ON CONFLICT (ticket_id) DO UPDATE SET score = excluded.score, comment = excluded.comment, rated_at = excluded.rated_at;

-- name: rating-of-ticket
SELECT score, comment, rated_at AS "at" FROM ratings WHERE ticket_id = ?;

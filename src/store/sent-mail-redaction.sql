-- Named queries that take live status-link tokens out of a sent mail
-- (src/store/outbox-queue.ts, redactSentMail): docs/status-page.md promises that a
-- copy of the database cannot produce a working link.

-- name: sent-mail-for-redaction
SELECT m.id, m.ticket_id AS "ticketId", m.body_text AS text, m.body_html AS html, m.raw_sha256 AS "rawSha"
FROM outbox o JOIN messages m ON m.id = o.message_row
WHERE o.id = ?;

-- Whether a token found in the mail is one of the ticket's: looked up by its
-- hash (unique index), since this runs for every sent mail and a look-up by
-- ticket would scan the table (its only ticket index covers live tokens).
-- name: ticket-token-known
SELECT 1 AS known FROM status_tokens WHERE token_hash = ? AND ticket_id = ?;

-- name: redact-sent-mail
UPDATE messages SET body_text = @text, body_html = @html, raw_sha256 = NULL WHERE id = @id;

-- The sent bytes are dropped rather than edited: the link may be folded or
-- encoded anywhere in them. Kept while anything else still points at them.
-- name: drop-unused-raw
DELETE FROM raw_messages
WHERE sha256 = @sha
  AND NOT EXISTS (SELECT 1 FROM messages WHERE raw_sha256 = @sha)
  AND NOT EXISTS (SELECT 1 FROM quarantine WHERE raw_sha256 = @sha);

-- SQLite's dialect of outbox queries (outbox-queue.ts), overriding outbox.sql.

-- SQLite's planner picks the pending-by-due index for this one and then sorts
-- a backlog; the partial index of never-tried rows reads only what it returns.
-- name: due-outbox-fresh
SELECT o.id, o.message_row AS "messageRow", o.mailbox, o.envelope_from AS "envelopeFrom", o.envelope_to AS "envelopeTo",
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS "messageId",
       m.from_addr AS "fromAddr", m.to_addrs AS "toAddrs", r.data AS raw
FROM outbox o INDEXED BY outbox_fresh JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.attempts = 0 AND o.next_attempt_at <= ?
ORDER BY o.id DESC LIMIT ?;

-- Named queries of the outbox queue (outbox-queue.ts).

-- name: insert-outbox
INSERT INTO outbox (message_row, mailbox, envelope_from, envelope_to, status, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, 'pending', ?, ?);

-- The oldest due rows, first attempts and retries alike, in the order they
-- fell due: nothing waits for ever, however much new mail keeps arriving.
-- A row claimed by a node whose heartbeat is gone (killed, or restarted
-- under a new incarnation) is due at once, not when its lease runs out.
-- name: due-outbox
SELECT o.id, o.message_row AS "messageRow", o.mailbox, o.envelope_from AS "envelopeFrom", o.envelope_to AS "envelopeTo",
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS "messageId",
       m.from_addr AS "fromAddr", m.to_addrs AS "toAddrs", r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending'
  AND (o.next_attempt_at <= @now
       OR (o.claimed_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.incarnation = o.claimed_by AND n.expires_at > @now)))
ORDER BY o.next_attempt_at, o.id LIMIT @limit;

-- The claim names the node's incarnation (or none, for a CLI pass), so it
-- lives only as long as that node's heartbeat.
-- name: lease-outbox
UPDATE outbox SET next_attempt_at = @until, attempts = attempts + 1, claimed_by = @claimant WHERE id = @id AND status = 'pending';

-- name: set-message-raw
UPDATE messages SET raw_sha256 = ? WHERE id = ?;

-- A claimed row given back unsent (the worker is stopping): due again now, the attempt not counted.
-- name: outbox-release
UPDATE outbox SET next_attempt_at = ?, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, claimed_by = NULL WHERE id = ? AND status = 'pending';

-- Its status links are redacted later, by redaction passes (outbox-redact-pending).
-- name: outbox-sent
UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL, redact_pending = 1 WHERE id = ?;

-- Sent mail whose status links are still to be taken out of the stored copy.
-- name: outbox-redact-pending
SELECT id FROM outbox WHERE redact_pending = 1 ORDER BY id LIMIT ?;

-- name: outbox-redacted
UPDATE outbox SET redact_pending = 0 WHERE id = ?;

-- name: outbox-retry
UPDATE outbox SET next_attempt_at = ?, last_error = ?, claimed_by = NULL WHERE id = ? AND status = 'pending';

-- name: outbox-failed
UPDATE outbox SET status = 'failed', last_error = ?, sent_at = NULL, next_attempt_at = ? WHERE id = ?;

-- name: outbox-counts
SELECT status, count(*) AS n FROM outbox GROUP BY status;

-- Rows not sent yet (pending and failed), or only the failed ones, or one row.
-- name: list-outbox
SELECT o.id, o.mailbox, m.kind, o.envelope_to AS "envelopeTo", m.subject, o.status, o.attempts,
       o.next_attempt_at AS "nextAttemptAt", o.last_error AS "lastError", o.created_at AS "createdAt", o.sent_at AS "sentAt",
       t.ref
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN tickets t ON t.id = m.ticket_id
WHERE CASE WHEN @id IS NOT NULL THEN o.id = @id WHEN @failed = 1 THEN o.status = 'failed' ELSE o.status IN ('pending', 'failed') END
ORDER BY o.id;

-- An operator's retry: the row starts the retry schedule afresh, due now.
-- name: outbox-requeue
UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = @now, sent_at = NULL, claimed_by = NULL
WHERE status = 'failed' AND (@id IS NULL OR id = @id)
RETURNING id;

-- The newest rows never tried yet (fresh acknowledgements, agent replies):
-- they jump a backlog of older ones for part of each claim.
-- name: due-outbox-fresh
SELECT o.id, o.message_row AS "messageRow", o.mailbox, o.envelope_from AS "envelopeFrom", o.envelope_to AS "envelopeTo",
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS "messageId",
       m.from_addr AS "fromAddr", m.to_addrs AS "toAddrs", r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.attempts = 0 AND o.next_attempt_at <= ?
ORDER BY o.id DESC LIMIT ?;

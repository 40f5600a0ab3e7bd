-- PostgreSQL's dialect of outbox queries (outbox-queue.ts), overriding outbox.sql.

-- Several nodes claim from one outbox. Each claim reads the due rows and
-- leases them in one transaction; SKIP LOCKED makes a claim pass over rows
-- another is leasing instead of waiting and leasing them again. Claims take
-- no advisory lock (postgres-engine.ts): these row locks alone keep them apart.
-- name: due-outbox
SELECT o.id, o.message_row AS messageRow, o.mailbox, o.envelope_from AS envelopeFrom, o.envelope_to AS envelopeTo,
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS messageId,
       m.from_addr AS fromAddr, m.to_addrs AS toAddrs, r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending'
  AND (o.next_attempt_at <= @now
       OR (o.claimed_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.incarnation = o.claimed_by AND n.expires_at > @now)))
ORDER BY o.next_attempt_at, o.id LIMIT @limit
FOR UPDATE OF o SKIP LOCKED;

-- SKIP LOCKED as for due-outbox above.
-- name: due-outbox-fresh
SELECT o.id, o.message_row AS messageRow, o.mailbox, o.envelope_from AS envelopeFrom, o.envelope_to AS envelopeTo,
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS messageId,
       m.from_addr AS fromAddr, m.to_addrs AS toAddrs, r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.attempts = 0 AND o.next_attempt_at <= ?
ORDER BY o.id DESC LIMIT ?
FOR UPDATE OF o SKIP LOCKED;

-- A parameter first seen in `IS NULL` has no type PostgreSQL can infer: cast it.
-- name: list-outbox
SELECT o.id, o.mailbox, m.kind, o.envelope_to AS envelopeTo, m.subject, o.status, o.attempts,
       o.next_attempt_at AS nextAttemptAt, o.last_error AS lastError, o.created_at AS createdAt, o.sent_at AS sentAt,
       t.ref
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN tickets t ON t.id = m.ticket_id
WHERE CASE WHEN CAST(@id AS BIGINT) IS NOT NULL THEN o.id = @id WHEN @failed = 1 THEN o.status = 'failed' ELSE o.status IN ('pending', 'failed') END
ORDER BY o.id;

-- name: outbox-requeue
UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = @now, sent_at = NULL, claimed_by = NULL
WHERE status = 'failed' AND (CAST(@id AS BIGINT) IS NULL OR id = @id)
RETURNING id;

-- Several nodes redact at once: each passes over the rows another is redacting.
-- name: outbox-redact-pending
SELECT id FROM outbox WHERE redact_pending = 1 ORDER BY id LIMIT ?
FOR UPDATE SKIP LOCKED;

-- PostgreSQL's spelling of shared named queries (queries.sql) where the
-- shared SQL does not run there; the meaning stays identical, only the dialect
-- differs.

-- SQLite's two-argument max() is PostgreSQL's greatest(); the conflict
-- target's own columns need the table name, which SQLite infers.
-- name: upsert-cursor
INSERT INTO mailbox_cursors AS c (mailbox, uid_validity, last_uid, updated_at) VALUES (@mailbox, @uidValidity, @lastUid, @now)
ON CONFLICT (mailbox) DO UPDATE SET
  last_uid = CASE WHEN excluded.uid_validity = c.uid_validity THEN greatest(c.last_uid, excluded.last_uid) ELSE excluded.last_uid END,
  uid_validity = excluded.uid_validity,
  updated_at = excluded.updated_at;

-- name: mark-read
INSERT INTO mailbox_reads AS r (mailbox, read_at) VALUES (?, ?)
ON CONFLICT (mailbox) DO UPDATE SET read_at = greatest(coalesce(r.read_at, 0), excluded.read_at);

-- PostgreSQL picks the partial index outbox_fresh by itself; SQLite is told.
-- SKIP LOCKED as for due-outbox below.
-- name: due-outbox-fresh
SELECT o.id, o.message_row AS messageRow, o.mailbox, o.envelope_from AS envelopeFrom, o.envelope_to AS envelopeTo,
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS messageId,
       m.from_addr AS fromAddr, m.to_addrs AS toAddrs, r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.attempts = 0 AND o.next_attempt_at <= ?
ORDER BY o.id DESC LIMIT ?
FOR UPDATE OF o SKIP LOCKED;

-- name: outbox-release
UPDATE outbox SET next_attempt_at = ?, attempts = greatest(attempts - 1, 0) WHERE id = ? AND status = 'pending';

-- A parameter first seen in `IS NULL` has no type PostgreSQL can infer: cast it.
-- name: list-outbox
SELECT o.id, o.mailbox, m.kind, o.envelope_to AS envelopeTo, m.subject, o.status, o.attempts,
       o.next_attempt_at AS nextAttemptAt, o.last_error AS lastError, o.created_at AS createdAt, o.sent_at AS sentAt,
       t.ref
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN tickets t ON t.id = m.ticket_id
WHERE CASE WHEN CAST(@id AS BIGINT) IS NOT NULL THEN o.id = @id WHEN @failed = 1 THEN o.status = 'failed' ELSE o.status IN ('pending', 'failed') END
ORDER BY o.id;

-- name: outbox-requeue
UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = @now, sent_at = NULL
WHERE status = 'failed' AND (CAST(@id AS BIGINT) IS NULL OR id = @id)
RETURNING id;

-- name: list-tickets
SELECT t.ref, t.status, t.subject, t.requester, t.mailbox, t.team, t.created_at AS createdAt,
       (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id) AS messageCount,
       (SELECT l.ref FROM tickets l WHERE l.id = t.linked_to) AS linkedTo
FROM tickets t
WHERE (CAST(@status AS TEXT) IS NULL OR t.status = @status) AND (CAST(@mailbox AS TEXT) IS NULL OR t.mailbox = @mailbox)
  AND (CAST(@id AS BIGINT) IS NULL OR t.id = @id)
ORDER BY t.id;

-- name: readiness-write-probe
UPDATE status_tokens SET revoked_at = revoked_at WHERE false;

-- Several nodes claim from one outbox at once. Each claim reads the due rows
-- and leases them in one transaction; SKIP LOCKED makes a second node's claim
-- pass over rows the first is leasing instead of waiting for them and then
-- leasing them again, so every node sends and no row is sent twice.
-- name: due-outbox
SELECT o.id, o.message_row AS messageRow, o.mailbox, o.envelope_from AS envelopeFrom, o.envelope_to AS envelopeTo,
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS messageId,
       m.from_addr AS fromAddr, m.to_addrs AS toAddrs, r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.next_attempt_at <= ?
ORDER BY o.next_attempt_at, o.id LIMIT ?
FOR UPDATE OF o SKIP LOCKED;

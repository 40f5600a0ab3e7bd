-- Named queries of the customer status page (src/web/status-page-store.ts).

-- name: status-link-by-hash
SELECT s.ticket_id AS "ticketId", s.token_hash AS "tokenHash", s.revoked_at AS "revokedAt", t.closed_at AS "closedAt"
FROM status_tokens s JOIN tickets t ON t.id = s.ticket_id
WHERE s.token_hash = ?;

-- What a customer may read of a ticket's mail: their own messages and our
-- replies. Bounces, auto-replies and out-of-office answers are stored public
-- too, so the kinds are listed rather than trusting the flag alone.
-- name: status-page-message-heads
SELECT id, created_at AS at
FROM messages
WHERE ticket_id = ? AND public = 1 AND kind IN ('request', 'reply', 'agent-reply')
ORDER BY id;

-- name: status-page-event-heads
SELECT id, type, created_at AS at
FROM events
WHERE ticket_id = ? AND public = 1 AND type IN ('received', 'acknowledged', 'status', 'reopened', 'handoff')
ORDER BY id;

-- name: revoke-status-links
UPDATE status_tokens SET revoked_at = ? WHERE ticket_id = ? AND revoked_at IS NULL;

-- Changes nothing, but has to take the write lock: it fails when the
-- database is read-only, locked by another writer, or opened query-only.
-- name: readiness-write-probe
UPDATE status_tokens SET revoked_at = revoked_at WHERE 1 = 0;

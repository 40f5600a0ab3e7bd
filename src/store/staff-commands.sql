-- Named queries of the staff's ticket commands (notes, status changes) and
-- of discarding quarantined junk.

-- The stand-in a discarded quarantine entry points at once its bytes are
-- removed: 'discarded' can never equal a SHA-256 in hex, so no message's
-- bytes are ever mistaken for it, and the entry keeps its foreign key.
-- name: insert-discarded-raw
INSERT INTO raw_messages (sha256, size, data, created_at) VALUES ('discarded', 0, @empty, @now)
ON CONFLICT (sha256) DO NOTHING;

-- name: discard-quarantine
UPDATE quarantine SET raw_sha256 = 'discarded', released_at = @now, release_outcome = 'discarded'
WHERE id = @id AND released_at IS NULL;

-- Where routing sent a new ticket: its queue, priority and tags.
-- name: set-ticket-route
UPDATE tickets SET queue = @queue, priority = @priority, tags = @tags WHERE id = @id;

-- name: set-ticket-assignment
UPDATE tickets SET queue = @queue, owner = @owner, updated_at = @now WHERE id = @id;

-- name: insert-handoff
INSERT INTO handoffs (ticket_id, from_queue, to_queue, from_owner, to_owner, by_whom, note, created_at)
VALUES (@ticketId, @fromQueue, @toQueue, @fromOwner, @toOwner, @by, @note, @now);

-- name: ticket-handoffs
SELECT from_queue AS "fromQueue", to_queue AS "toQueue", from_owner AS "fromOwner", to_owner AS "toOwner", by_whom AS "by",
       note, created_at AS "at"
FROM handoffs WHERE ticket_id = @ticketId ORDER BY id;

-- name: staff-thread-message-ids
SELECT message_id AS "messageId" FROM messages
WHERE ticket_id = @ticketId AND direction = 'out' AND kind IN ('handoff-notice', 'new-ticket-notice') ORDER BY id;

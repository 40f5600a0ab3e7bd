-- Named queries of one ticket's records (ticket-records.ts) and the staff
-- commands (ticket-commands.ts).

-- name: ticket-id-by-ref
SELECT id FROM tickets WHERE ref = ?;

-- name: ticket-by-id
SELECT id, ref, mailbox, status, subject, requester, requester_name AS "requesterName", reply_to AS "replyTo",
       language, priority, on_hold_reason AS "onHoldReason", queue, queue AS team, owner, tags, linked_to AS "linkedTo", created_at AS "createdAt",
       updated_at AS "updatedAt", first_response_at AS "firstResponseAt", resolved_at AS "resolvedAt", closed_at AS "closedAt",
       ack_to AS "ackTo"
FROM tickets WHERE id = ?;

-- name: ticket-auto-reply
SELECT flag, ack_to AS "ackTo", ack_withheld AS "ackWithheld" FROM tickets WHERE id = ?;

-- name: update-ticket-status
UPDATE tickets SET status = @status, updated_at = @now,
  on_hold_reason = CASE WHEN @status = 'on-hold' THEN @reason ELSE NULL END,
  resolved_at = CASE WHEN @status = 'resolved' THEN @now WHEN @status IN ('open', 'pending', 'on-hold') THEN NULL ELSE resolved_at END,
  closed_at = CASE WHEN @status = 'closed' THEN @now ELSE NULL END
WHERE id = @id;

-- name: touch-ticket
UPDATE tickets SET updated_at = ? WHERE id = ?;

-- name: mark-first-response
UPDATE tickets SET first_response_at = coalesce(first_response_at, @now), updated_at = @now WHERE id = @id;

-- name: insert-message
INSERT INTO messages (ticket_id, mailbox, direction, kind, message_id, from_addr, rcpt, to_addrs, cc_addrs, subject,
                      body_text, body_html, headers, attachments, raw_sha256, sent_date, created_at, public)
VALUES (@ticketId, @mailbox, @direction, @kind, @messageId, @from, @rcpt, @to, @cc, @subject,
        @text, @html, @headers, @attachments, @rawSha256, @sentDate, @now, @public)
RETURNING id;

-- name: insert-event
INSERT INTO events (ticket_id, type, public, detail, created_at) VALUES (?, ?, ?, ?, ?);

-- name: queue-position
SELECT count(*) AS n FROM tickets
WHERE mailbox = @mailbox AND status IN ('open', 'on-hold') AND created_at <= @createdAt AND id < @id;

-- name: active-token
SELECT nonce FROM status_tokens WHERE ticket_id = ? AND recipient = ? AND revoked_at IS NULL;

-- name: insert-token
INSERT INTO status_tokens (ticket_id, recipient, nonce, token_hash, created_at) VALUES (?, ?, ?, ?, ?);

-- name: list-tickets
SELECT t.ref, t.status, t.subject, t.requester, t.mailbox, t.queue, t.queue AS team, t.created_at AS "createdAt",
       (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id) AS "messageCount",
       (SELECT l.ref FROM tickets l WHERE l.id = t.linked_to) AS "linkedTo"
FROM tickets t
WHERE (@status IS NULL OR t.status = @status) AND (@mailbox IS NULL OR t.mailbox = @mailbox) AND (@id IS NULL OR t.id = @id)
  AND (@queue IS NULL OR lower(t.queue) = lower(@queue))
ORDER BY t.id;

-- name: ticket-messages
SELECT id, direction, kind, from_addr AS "from", to_addrs AS "to", subject, message_id AS "messageId",
       coalesce(sent_date, created_at) AS date, body_text AS text, public
FROM messages WHERE ticket_id = ? ORDER BY id;

-- name: ticket-events
SELECT type, public, detail, created_at AS at FROM events WHERE ticket_id = ? ORDER BY id;

-- Staff warnings are not part of the customer's conversation, so their
-- Message-IDs stay out of what we send the customer.
-- name: thread-message-ids
SELECT message_id AS "messageId" FROM messages
WHERE ticket_id = ? AND public = 1 AND kind NOT IN ('bounce', 'out-of-office') ORDER BY id DESC LIMIT 20;

-- How many tickets the database holds (`ticketd doctor`).
-- name: count-tickets
SELECT count(*) AS n FROM tickets;

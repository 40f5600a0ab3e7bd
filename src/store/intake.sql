-- Named queries of the intake transaction (intake.ts): what the thread stage
-- is told about a message, and the rows a verdict writes.

-- name: insert-raw
INSERT INTO raw_messages (sha256, size, data, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (sha256) DO NOTHING;

-- A message sent to two of our mailboxes (To one, Cc the other, or through
-- a list) arrives once in each; the copy found later is the same message,
-- not a new one. Across mailboxes the sender must match too, so two senders'
-- clashing Message-IDs cannot swallow each other's mail.
-- name: inbound-by-message-id
SELECT id, mailbox, ticket_id AS "ticketId" FROM messages
WHERE direction = 'in' AND message_id = @messageId AND (mailbox = @mailbox OR from_addr = @from)
ORDER BY mailbox = @mailbox DESC, id LIMIT 1;

-- name: ticket-by-message-id
SELECT DISTINCT t.id FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id = ? AND t.mailbox = ?;

-- Whether a Message-ID is one of the notices we mailed staff about a ticket.
-- name: ticket-by-staff-notice-id
SELECT t.id FROM messages m JOIN tickets t ON t.id = m.ticket_id
WHERE m.message_id = ? AND t.mailbox = ? AND m.direction = 'out' AND m.kind IN ('new-ticket-notice', 'handoff-notice')
LIMIT 1;

-- name: participants-of
SELECT address FROM participants WHERE ticket_id = ?;

-- name: insert-participant
INSERT INTO participants (ticket_id, address, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING;

-- name: is-suppressed
SELECT 1 FROM suppressions WHERE address = ?;

-- Who an outgoing message of ours went to: its To header and its envelope.
-- name: outbound-recipients
SELECT m.to_addrs AS "toAddrs", o.envelope_to AS "envelopeTo"
FROM messages m LEFT JOIN outbox o ON o.message_row = m.id
WHERE m.direction = 'out' AND m.message_id = ?;

-- name: insert-suppression
INSERT INTO suppressions (address, reason, created_at) VALUES (?, ?, ?) ON CONFLICT (address) DO NOTHING;

-- name: acks-to-since
SELECT count(*) AS n FROM messages WHERE rcpt = ? AND kind = 'ack' AND created_at >= ?;

-- name: tickets-acked-to-since
SELECT count(*) AS n FROM tickets WHERE ack_to = ? AND created_at >= ?;

-- name: auto-replies-since
SELECT count(*) AS n FROM messages WHERE direction = 'out' AND kind = 'ack' AND created_at >= ?;

-- name: flag-ticket
UPDATE tickets SET flag = coalesce(flag, ?) WHERE id = ?;

-- name: insert-ticket
INSERT INTO tickets (ref, mailbox, status, subject, requester, requester_name, reply_to, language, linked_to, created_at, updated_at)
VALUES (@ref, @mailbox, 'open', @subject, @requester, @requesterName, @replyTo, @language, @linkedTo, @now, @now)
RETURNING id;

-- name: set-ticket-auto-reply
UPDATE tickets SET ack_to = @ackTo, ack_withheld = @ackWithheld WHERE id = @id;

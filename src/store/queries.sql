-- Named queries for the SQLite store. Each block starts with `-- name: x`;
-- every query is prepared when the store opens, so a typo fails at start.

-- name: insert-raw
INSERT INTO raw_messages (sha256, size, data, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (sha256) DO NOTHING;

-- name: get-cursor
SELECT uid_validity AS uidValidity, last_uid AS lastUid FROM mailbox_cursors WHERE mailbox = ?;

-- name: upsert-cursor
INSERT INTO mailbox_cursors (mailbox, uid_validity, last_uid, updated_at) VALUES (@mailbox, @uidValidity, @lastUid, @now)
ON CONFLICT (mailbox) DO UPDATE SET
  last_uid = CASE WHEN excluded.uid_validity = uid_validity THEN max(last_uid, excluded.last_uid) ELSE excluded.last_uid END,
  uid_validity = excluded.uid_validity,
  updated_at = excluded.updated_at;

-- name: receipt-exists
SELECT outcome FROM imap_receipts WHERE mailbox = ? AND uid_validity = ? AND uid = ?;

-- name: insert-receipt
INSERT INTO imap_receipts (mailbox, uid_validity, uid, outcome, message_row, quarantine_id, created_at)
VALUES (@mailbox, @uidValidity, @uid, @outcome, @messageRow, @quarantineId, @now);

-- name: unsettled-receipts
SELECT uid, outcome FROM imap_receipts WHERE mailbox = ? AND uid_validity = ? AND settled_at IS NULL ORDER BY uid;

-- name: settle-receipt
UPDATE imap_receipts SET settled_at = ? WHERE mailbox = ? AND uid_validity = ? AND uid = ?;

-- name: mark-watched
INSERT INTO mailbox_reads (mailbox, watched_since) VALUES (?, ?)
ON CONFLICT (mailbox) DO UPDATE SET watched_since = excluded.watched_since;

-- name: mark-read
INSERT INTO mailbox_reads (mailbox, read_at) VALUES (?, ?)
ON CONFLICT (mailbox) DO UPDATE SET read_at = max(coalesce(read_at, 0), excluded.read_at);

-- A message sent to two of our mailboxes (To one, Cc the other, or through
-- a list) arrives once in each; the copy found later is the same message,
-- not a new one. Across mailboxes the sender must match too, so two senders'
-- clashing Message-IDs cannot swallow each other's mail.
-- name: inbound-by-message-id
SELECT id, mailbox, ticket_id AS ticketId FROM messages
WHERE direction = 'in' AND message_id = @messageId AND (mailbox = @mailbox OR from_addr = @from)
ORDER BY mailbox = @mailbox DESC, id LIMIT 1;

-- name: ticket-by-message-id
SELECT DISTINCT t.id FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.message_id = ? AND t.mailbox = ?;

-- name: ticket-id-by-ref
SELECT id FROM tickets WHERE ref = ?;

-- name: ticket-by-id
SELECT id, ref, mailbox, status, subject, requester, requester_name AS requesterName, reply_to AS replyTo,
       language, priority, on_hold_reason AS onHoldReason, queue, owner, tags, linked_to AS linkedTo, created_at AS createdAt,
       updated_at AS updatedAt, first_response_at AS firstResponseAt, resolved_at AS resolvedAt, closed_at AS closedAt,
       ack_to AS ackTo
FROM tickets WHERE id = ?;

-- name: participants-of
SELECT address FROM participants WHERE ticket_id = ?;

-- name: insert-participant
INSERT INTO participants (ticket_id, address, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING;

-- name: is-suppressed
SELECT 1 FROM suppressions WHERE address = ?;

-- Who an outgoing message of ours went to: its To header and its envelope.
-- name: outbound-recipients
SELECT m.to_addrs AS toAddrs, o.envelope_to AS envelopeTo
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
VALUES (@ref, @mailbox, 'open', @subject, @requester, @requesterName, @replyTo, @language, @linkedTo, @now, @now);

-- name: ticket-auto-reply
SELECT flag, ack_to AS ackTo, ack_withheld AS ackWithheld FROM tickets WHERE id = ?;

-- name: set-ticket-auto-reply
UPDATE tickets SET ack_to = @ackTo, ack_withheld = @ackWithheld WHERE id = @id;

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
        @text, @html, @headers, @attachments, @rawSha256, @sentDate, @now, @public);

-- name: insert-event
INSERT INTO events (ticket_id, type, public, detail, created_at) VALUES (?, ?, ?, ?, ?);

-- name: queue-position
SELECT count(*) AS n FROM tickets
WHERE mailbox = @mailbox AND status IN ('open', 'on-hold') AND created_at <= @createdAt AND id < @id;

-- name: insert-quarantine
INSERT INTO quarantine (mailbox, origin, raw_sha256, reason, created_at) VALUES (?, ?, ?, ?, ?);

-- name: active-token
SELECT nonce FROM status_tokens WHERE ticket_id = ? AND recipient = ? AND revoked_at IS NULL;

-- name: insert-token
INSERT INTO status_tokens (ticket_id, recipient, nonce, token_hash, created_at) VALUES (?, ?, ?, ?, ?);

-- name: insert-outbox
INSERT INTO outbox (message_row, mailbox, envelope_from, envelope_to, status, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, 'pending', ?, ?);

-- The oldest due rows, first attempts and retries alike, in the order they
-- fell due: nothing waits for ever, however much new mail keeps arriving.
-- name: due-outbox
SELECT o.id, o.message_row AS messageRow, o.mailbox, o.envelope_from AS envelopeFrom, o.envelope_to AS envelopeTo,
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS messageId,
       m.from_addr AS fromAddr, m.to_addrs AS toAddrs, r.data AS raw
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.next_attempt_at <= ?
ORDER BY o.next_attempt_at, o.id LIMIT ?;

-- The newest rows never tried yet (fresh acknowledgements, agent replies):
-- they jump a backlog of older ones for part of each claim.
-- name: due-outbox-fresh
SELECT o.id, o.message_row AS messageRow, o.mailbox, o.envelope_from AS envelopeFrom, o.envelope_to AS envelopeTo,
       o.attempts, m.kind, m.headers, m.subject, m.body_text AS text, m.body_html AS html, m.message_id AS messageId,
       m.from_addr AS fromAddr, m.to_addrs AS toAddrs, r.data AS raw
FROM outbox o INDEXED BY outbox_fresh JOIN messages m ON m.id = o.message_row LEFT JOIN raw_messages r ON r.sha256 = m.raw_sha256
WHERE o.status = 'pending' AND o.attempts = 0 AND o.next_attempt_at <= ?
ORDER BY o.id DESC LIMIT ?;

-- name: lease-outbox
UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending';

-- name: set-message-raw
UPDATE messages SET raw_sha256 = ? WHERE id = ?;

-- A claimed row given back unsent (the worker is stopping): due again now, the attempt not counted.
-- name: outbox-release
UPDATE outbox SET next_attempt_at = ?, attempts = max(attempts - 1, 0) WHERE id = ? AND status = 'pending';

-- name: outbox-sent
UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL WHERE id = ?;

-- name: outbox-retry
UPDATE outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND status = 'pending';

-- name: outbox-failed
UPDATE outbox SET status = 'failed', last_error = ?, sent_at = NULL, next_attempt_at = ? WHERE id = ?;

-- name: outbox-counts
SELECT status, count(*) AS n FROM outbox GROUP BY status;

-- Rows not sent yet (pending and failed), or only the failed ones, or one row.
-- name: list-outbox
SELECT o.id, o.mailbox, m.kind, o.envelope_to AS envelopeTo, m.subject, o.status, o.attempts,
       o.next_attempt_at AS nextAttemptAt, o.last_error AS lastError, o.created_at AS createdAt, o.sent_at AS sentAt,
       t.ref
FROM outbox o JOIN messages m ON m.id = o.message_row LEFT JOIN tickets t ON t.id = m.ticket_id
WHERE CASE WHEN @id IS NOT NULL THEN o.id = @id WHEN @failed = 1 THEN o.status = 'failed' ELSE o.status IN ('pending', 'failed') END
ORDER BY o.id;

-- An operator's retry: the row starts the retry schedule afresh, due now.
-- name: outbox-requeue
UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = @now, sent_at = NULL
WHERE status = 'failed' AND (@id IS NULL OR id = @id)
RETURNING id;

-- name: list-tickets
SELECT t.ref, t.status, t.subject, t.requester, t.mailbox, t.queue, t.owner, t.priority, t.created_at AS createdAt,
       (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id) AS messageCount,
       (SELECT l.ref FROM tickets l WHERE l.id = t.linked_to) AS linkedTo
FROM tickets t
WHERE (@status IS NULL OR t.status = @status) AND (@mailbox IS NULL OR t.mailbox = @mailbox) AND (@id IS NULL OR t.id = @id)
ORDER BY t.id;

-- name: ticket-messages
SELECT id, direction, kind, from_addr AS "from", to_addrs AS "to", subject, message_id AS messageId,
       coalesce(sent_date, created_at) AS date, body_text AS text, public
FROM messages WHERE ticket_id = ? ORDER BY id;

-- name: ticket-events
SELECT type, public, detail, created_at AS at FROM events WHERE ticket_id = ? ORDER BY id;

-- Staff warnings are not part of the customer's conversation, so their
-- Message-IDs stay out of what we send the customer.
-- name: thread-message-ids
SELECT message_id AS messageId FROM messages
WHERE ticket_id = ? AND public = 1 AND kind NOT IN ('bounce', 'out-of-office') ORDER BY id DESC LIMIT 20;

-- name: list-quarantine
SELECT q.id, q.mailbox, q.origin, q.reason, q.created_at AS createdAt, q.released_at AS releasedAt,
       q.release_outcome AS releaseOutcome, r.size
FROM quarantine q JOIN raw_messages r ON r.sha256 = q.raw_sha256
WHERE (@all = 1 OR q.released_at IS NULL) ORDER BY q.id;

-- name: quarantine-by-id
SELECT q.id, q.mailbox, q.origin, q.reason, q.created_at AS createdAt, q.released_at AS releasedAt,
       q.release_outcome AS releaseOutcome, r.size, r.data AS raw, q.raw_sha256 AS rawSha
FROM quarantine q JOIN raw_messages r ON r.sha256 = q.raw_sha256 WHERE q.id = ?;

-- name: release-quarantine
UPDATE quarantine SET released_at = ?, release_outcome = ? WHERE id = ?;

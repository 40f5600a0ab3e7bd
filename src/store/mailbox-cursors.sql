-- Named queries of the IMAP cursors, receipts and reads (mailbox-cursors.ts).

-- name: get-cursor
SELECT uid_validity AS "uidValidity", last_uid AS "lastUid" FROM mailbox_cursors WHERE mailbox = ?;

-- name: upsert-cursor
INSERT INTO mailbox_cursors (mailbox, uid_validity, last_uid, updated_at) VALUES (@mailbox, @uidValidity, @lastUid, @now)
ON CONFLICT (mailbox) DO UPDATE SET
  last_uid = CASE WHEN excluded.uid_validity = mailbox_cursors.uid_validity AND mailbox_cursors.last_uid > excluded.last_uid
                  THEN mailbox_cursors.last_uid ELSE excluded.last_uid END,
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
ON CONFLICT (mailbox) DO UPDATE SET
  read_at = CASE WHEN mailbox_reads.read_at > excluded.read_at THEN mailbox_reads.read_at ELSE excluded.read_at END;

-- What a running ticketd recorded of reading each mailbox, whichever node read it (`ticketd doctor`).
-- name: mailbox-reads
SELECT mailbox, watched_since AS "watchedSince", read_at AS "readAt" FROM mailbox_reads;

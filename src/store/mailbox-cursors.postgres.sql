-- PostgreSQL's dialect of mailbox-cursors.sql.

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

-- Teams become queues: every ticket has one queue (set by routing when it
-- opens, or by a handoff) and at most one owner, and each handoff is a row
-- of its own with who, when, from, to and why, so the handoff total and the
-- story a receiving queue is sent are read, not reconstructed.
ALTER TABLE tickets RENAME COLUMN team TO queue;
ALTER TABLE tickets ADD COLUMN owner TEXT;
-- Tags set by routing, a JSON array of strings.
ALTER TABLE tickets ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
CREATE INDEX tickets_queue_status ON tickets (queue, status) WHERE queue IS NOT NULL;

CREATE TABLE handoffs (
  id          INTEGER PRIMARY KEY,
  ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
  from_queue  TEXT,
  to_queue    TEXT,
  from_owner  TEXT,
  to_owner    TEXT,
  -- Who handed it on: a staff address, a login at the command line; NULL for
  -- handoffs recorded before this table existed.
  by_whom     TEXT,
  note        TEXT NOT NULL,
  created_at  INTEGER NOT NULL
);
CREATE INDEX handoffs_ticket ON handoffs (ticket_id, id);

-- Handoffs made before: each left a public event whose detail is exactly
-- {"team":"NAME"} (written by JSON.stringify). The name is cut out of it
-- with substr, which both SQLite and PostgreSQL have; the note went into a
-- separate internal event, which stays where it is.
INSERT INTO handoffs (ticket_id, from_queue, to_queue, by_whom, note, created_at)
SELECT ticket_id, NULL, substr(detail, 10, length(detail) - 11), NULL, '', created_at
FROM events
WHERE type = 'handoff' AND detail LIKE '{"team":"%"}'
ORDER BY id;

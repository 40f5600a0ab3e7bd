-- What the requester thought of how a ticket was handled: a score from 1 to
-- 5 and an optional comment, given on the status page once the ticket is
-- resolved. One row per ticket, because a second rating replaces the first
-- (each one is also an internal `rated` event in the ticket's history).
CREATE TABLE ratings (
  ticket_id  INTEGER PRIMARY KEY REFERENCES tickets(id),
  score      INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
  comment    TEXT NOT NULL DEFAULT '',
  rated_at   INTEGER NOT NULL
);

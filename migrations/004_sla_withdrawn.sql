-- A delay notice or staff warning can wait in the outbox (an SMTP outage,
-- say) past the situation it describes. It is checked again just before it
-- is sent and, when it no longer holds, withdrawn: the outbox row and the
-- threshold's record both say so. SQLite cannot widen a CHECK in place, so
-- both tables are rebuilt with the same columns and indexes.

CREATE TABLE outbox_new (
  id              INTEGER PRIMARY KEY,
  message_row     INTEGER NOT NULL UNIQUE REFERENCES messages(id),
  mailbox         TEXT NOT NULL,
  envelope_from   TEXT NOT NULL,
  envelope_to     TEXT NOT NULL,
  -- withdrawn: never sent because what it said stopped being true (last_error says why).
  status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'withdrawn')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  sent_at         INTEGER,
  created_at      INTEGER NOT NULL
);
INSERT INTO outbox_new (id, message_row, mailbox, envelope_from, envelope_to, status, attempts, next_attempt_at, last_error, sent_at, created_at)
SELECT id, message_row, mailbox, envelope_from, envelope_to, status, attempts, next_attempt_at, last_error, sent_at, created_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE sla_notices_new (
  id          INTEGER PRIMARY KEY,
  ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
  kind        TEXT NOT NULL CHECK (kind IN ('notice', 'warning', 'breach')),
  target      TEXT NOT NULL CHECK (target IN ('first-response', 'resolution')),
  cycle       INTEGER NOT NULL,
  threshold   TEXT NOT NULL,
  -- withdrawn: queued, then found untrue just before sending and not sent.
  outcome     TEXT NOT NULL CHECK (outcome IN ('queued', 'skipped', 'superseded', 'logged', 'withdrawn')),
  reason      TEXT,
  message_row INTEGER REFERENCES messages(id),
  created_at  INTEGER NOT NULL,
  UNIQUE (ticket_id, kind, target, cycle, threshold)
);
INSERT INTO sla_notices_new (id, ticket_id, kind, target, cycle, threshold, outcome, reason, message_row, created_at)
SELECT id, ticket_id, kind, target, cycle, threshold, outcome, reason, message_row, created_at FROM sla_notices;
DROP TABLE sla_notices;
ALTER TABLE sla_notices_new RENAME TO sla_notices;
-- The pre-send check finds a queued mail's threshold by its message.
CREATE INDEX sla_notices_message ON sla_notices (message_row) WHERE message_row IS NOT NULL;

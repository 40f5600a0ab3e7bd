-- SLA clocks. One row per ticket an SLA policy applies to, kept in a side
-- table so the SLA engine never rewrites ticket rows. Times are integer
-- milliseconds since the epoch; "used" times are business milliseconds.

CREATE TABLE ticket_sla (
  ticket_id      INTEGER PRIMARY KEY REFERENCES tickets(id),
  policy         TEXT NOT NULL,
  -- Start of the stretch the clock has been running since; NULL while it
  -- is paused (pending) or stopped (resolved, closed).
  running_since  INTEGER,
  fr_target_ms   INTEGER NOT NULL,
  -- Business time used up to running_since (or in all, once met).
  fr_used_ms     INTEGER NOT NULL DEFAULT 0,
  fr_met_at      INTEGER,
  -- When the target breaches if the clock keeps running; NULL when not running or met.
  fr_due_at      INTEGER,
  res_target_ms  INTEGER NOT NULL,
  res_used_ms    INTEGER NOT NULL DEFAULT 0,
  res_met_at     INTEGER,
  res_due_at     INTEGER,
  -- A reopened ticket starts a new resolution cycle with a fresh clock.
  res_cycle      INTEGER NOT NULL DEFAULT 1,
  res_started_at INTEGER NOT NULL,
  -- The earliest instant a warning, breach or notice can fall due; NULL when none can.
  next_due       INTEGER,
  updated_at     INTEGER NOT NULL
);
-- The scheduler's only lookups: min(next_due) and the rows with next_due <= now.
CREATE INDEX ticket_sla_next_due ON ticket_sla (next_due) WHERE next_due IS NOT NULL;
-- Recent first responses and resolutions per policy, for the delay estimate.
CREATE INDEX ticket_sla_fr_met ON ticket_sla (policy, fr_met_at, fr_used_ms) WHERE fr_met_at IS NOT NULL;
CREATE INDEX ticket_sla_res_met ON ticket_sla (policy, res_met_at, res_used_ms) WHERE res_met_at IS NOT NULL;

-- Every SLA threshold acted on, once: customer notices, staff warnings and
-- breaches. The row is written in the transaction that queues the mail, and
-- the unique key turns a second tick, a restart or a concurrent
-- `sla tick` into a no-op.
CREATE TABLE sla_notices (
  id          INTEGER PRIMARY KEY,
  ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
  kind        TEXT NOT NULL CHECK (kind IN ('notice', 'warning', 'breach')),
  target      TEXT NOT NULL CHECK (target IN ('first-response', 'resolution')),
  -- 0 for first response; the resolution cycle otherwise.
  cycle       INTEGER NOT NULL,
  -- Notice number within the target ('1', '2', ...) or the share ('80%').
  threshold   TEXT NOT NULL,
  -- queued: mail in the outbox; skipped: not sent (reason says why);
  -- superseded: passed while a later threshold of the same series was due; logged: breach.
  outcome     TEXT NOT NULL CHECK (outcome IN ('queued', 'skipped', 'superseded', 'logged')),
  reason      TEXT,
  message_row INTEGER REFERENCES messages(id),
  created_at  INTEGER NOT NULL,
  UNIQUE (ticket_id, kind, target, cycle, threshold)
);

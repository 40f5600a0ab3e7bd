-- A delay notice or staff warning can wait in the outbox (an SMTP outage,
-- say) past the situation it describes. It is checked again just before it
-- is sent and, when it no longer holds, withdrawn: the outbox row and the
-- threshold's record both say so. PostgreSQL widens the CHECKs in place
-- where SQLite (migrations/004_sla_withdrawn.sql) rebuilds both tables.

ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
-- withdrawn: never sent because what it said stopped being true (last_error says why).
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check CHECK (status IN ('pending', 'sent', 'failed', 'withdrawn'));

ALTER TABLE sla_notices DROP CONSTRAINT sla_notices_outcome_check;
-- withdrawn: queued, then found untrue just before sending and not sent.
ALTER TABLE sla_notices ADD CONSTRAINT sla_notices_outcome_check
  CHECK (outcome IN ('queued', 'skipped', 'superseded', 'logged', 'withdrawn'));
-- The pre-send check finds a queued mail's threshold by its message.
CREATE INDEX sla_notices_message ON sla_notices (message_row) WHERE message_row IS NOT NULL;

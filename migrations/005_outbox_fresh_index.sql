-- 004_sla_withdrawn rebuilds the outbox table, which drops the partial index
-- 004_outbox_fresh_first made when that ran first (a new database runs both).
-- Made again here, and only if missing, so every database has it whichever
-- 004 migrations it received.
CREATE INDEX IF NOT EXISTS outbox_fresh ON outbox (id) WHERE status = 'pending' AND attempts = 0;

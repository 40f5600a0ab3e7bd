-- Part of every outbox claim goes to the newest mail never tried yet, so a
-- customer who just wrote is not queued behind a backlog (see
-- docs/outbox.md). This partial index lets that scan stop after a few
-- rows however long the backlog is; claiming a row counts an attempt, which
-- takes it out of the index.
CREATE INDEX outbox_fresh ON outbox (id) WHERE status = 'pending' AND attempts = 0;

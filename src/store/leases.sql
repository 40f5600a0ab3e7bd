-- Nodes and mailbox leases (migration 010). A node's heartbeat renews its
-- row and its leases together; a lease counts only while both the lease and
-- its holder's row are unexpired, so a node that died (or was restarted under
-- the same name, with a new incarnation) loses its mailboxes at once.

-- name: node-by-name
SELECT incarnation, host, pid, expires_at AS expiresAt FROM nodes WHERE name = @name;

-- name: node-register
INSERT INTO nodes (name, incarnation, host, pid, started_at, beat_at, expires_at)
VALUES (@name, @incarnation, @host, @pid, @now, @now, @expiresAt)
ON CONFLICT (name) DO UPDATE SET
  incarnation = excluded.incarnation, host = excluded.host, pid = excluded.pid,
  started_at = excluded.started_at, beat_at = excluded.beat_at, expires_at = excluded.expires_at, stopping_since = NULL;

-- Zero rows: another process took over this node's name, and this one must stop.
-- name: node-beat
UPDATE nodes SET beat_at = @now, expires_at = @expiresAt WHERE name = @name AND incarnation = @incarnation;

-- A clean stop: the node is dead from now on, so its mailboxes go at once.
-- name: node-leave
UPDATE nodes SET expires_at = @now WHERE incarnation = @incarnation;

-- name: nodes-live
SELECT name, incarnation FROM nodes WHERE expires_at > @now ORDER BY name;

-- A stopping node: its mailboxes go to the others, its claims still count.
-- name: node-stopping
UPDATE nodes SET stopping_since = @now WHERE incarnation = @incarnation;

-- name: nodes-live-stopping
SELECT incarnation FROM nodes WHERE expires_at > @now AND stopping_since IS NOT NULL;

-- name: nodes-all
SELECT name, incarnation, host, pid, started_at AS startedAt, beat_at AS beatAt, expires_at AS expiresAt FROM nodes ORDER BY name;

-- name: leases-renew
UPDATE mailbox_leases SET expires_at = @expiresAt WHERE holder = @incarnation;

-- name: leases-all
SELECT mailbox, holder, expires_at AS expiresAt FROM mailbox_leases ORDER BY mailbox;

-- Takes a mailbox that is free, whose lease ran out, or whose holder is dead;
-- one change when taken. Under concurrency PostgreSQL's row lock and SQLite's
-- write lock make exactly one of two nodes taking the same mailbox win.
-- name: lease-take
INSERT INTO mailbox_leases AS l (mailbox, holder, acquired_at, expires_at) VALUES (@mailbox, @incarnation, @now, @expiresAt)
ON CONFLICT (mailbox) DO UPDATE SET holder = excluded.holder, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
WHERE l.expires_at <= @now OR l.holder = excluded.holder
   OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.incarnation = l.holder AND n.expires_at > @now);

-- name: lease-release
DELETE FROM mailbox_leases WHERE mailbox = @mailbox AND holder = @incarnation;

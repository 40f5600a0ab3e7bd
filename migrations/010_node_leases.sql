-- Several ticketd nodes on one database (PostgreSQL), or one node that was
-- restarted. A node is a row renewed by its heartbeat; the incarnation names
-- one run of it, so a node restarted under the same name disowns at once
-- whatever its dead predecessor held. Each IMAP mailbox is watched by the
-- node holding its lease, which expires unless renewed.
CREATE TABLE nodes (
  name        TEXT PRIMARY KEY,
  incarnation TEXT NOT NULL UNIQUE,
  host        TEXT NOT NULL,
  pid         INTEGER NOT NULL,
  started_at  BIGINT NOT NULL,
  beat_at     BIGINT NOT NULL,
  -- Past this without a heartbeat the node counts as dead.
  expires_at  BIGINT NOT NULL
);

CREATE TABLE mailbox_leases (
  mailbox     TEXT PRIMARY KEY,
  -- nodes.incarnation of the holder.
  holder      TEXT NOT NULL,
  acquired_at BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL
);
CREATE INDEX mailbox_leases_holder ON mailbox_leases (holder);

-- The incarnation of the node whose outbox claim holds the row; it lives only
-- as long as that node's heartbeat.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

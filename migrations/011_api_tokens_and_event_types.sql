-- Bearer tokens of the JSON API. Only a SHA-256 of each token is kept: the
-- token itself is printed once when it is made and never stored. A name
-- is unique among the tokens in force, so `tokens revoke NAME` means one
-- token, and a revoked name can be given again.
CREATE TABLE api_tokens (
  id         INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  scope      TEXT NOT NULL CHECK (scope IN ('read', 'write')),
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at IS NULL;

-- `ticketd report` and its gauges on /metrics, read at every scrape, look
-- events up by type (resolutions, reopens, ratings, answers used) and time;
-- without this each read would walk every event of every ticket.
CREATE INDEX events_type ON events (type, created_at);

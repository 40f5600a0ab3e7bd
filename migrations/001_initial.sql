-- Core schema: raw mail, tickets, their messages and events, the IMAP
-- receipts that make intake idempotent, quarantine and the outbox.
-- Times are integer milliseconds since the epoch (UTC).

-- Every inbound and outbound message as received or sent, content-addressed,
-- so any message can be re-processed and nothing is ever lost.
CREATE TABLE raw_messages (
  sha256     TEXT PRIMARY KEY,
  size       INTEGER NOT NULL,
  data       BLOB NOT NULL,
  created_at INTEGER NOT NULL
);

CREATE TABLE tickets (
  id                INTEGER PRIMARY KEY,
  ref               TEXT NOT NULL UNIQUE,
  mailbox           TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('open', 'pending', 'on-hold', 'resolved', 'closed')),
  subject           TEXT NOT NULL,
  requester         TEXT NOT NULL,
  requester_name    TEXT NOT NULL DEFAULT '',
  reply_to          TEXT NOT NULL,
  language          TEXT,
  priority          TEXT NOT NULL DEFAULT 'normal',
  on_hold_reason    TEXT,
  linked_to         INTEGER REFERENCES tickets(id),
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  first_response_at INTEGER,
  resolved_at       INTEGER,
  closed_at         INTEGER
);
CREATE INDEX tickets_queue ON tickets (mailbox, status, created_at);
CREATE INDEX tickets_requester ON tickets (requester, created_at);

-- Who may add to a ticket: the requester and anyone copied on it.
CREATE TABLE participants (
  ticket_id INTEGER NOT NULL REFERENCES tickets(id),
  address   TEXT NOT NULL,
  role      TEXT NOT NULL CHECK (role IN ('requester', 'cc')),
  PRIMARY KEY (ticket_id, address)
) WITHOUT ROWID;

CREATE TABLE messages (
  id          INTEGER PRIMARY KEY,
  ticket_id   INTEGER REFERENCES tickets(id),
  mailbox     TEXT NOT NULL,
  direction   TEXT NOT NULL CHECK (direction IN ('in', 'out')),
  kind        TEXT NOT NULL,
  -- Message-ID without brackets; for inbound mail without one, 'sha256:<hex>'.
  message_id  TEXT NOT NULL,
  from_addr   TEXT NOT NULL DEFAULT '',
  -- Outbound: the one recipient an automatic reply went to (rate limits).
  rcpt        TEXT,
  to_addrs    TEXT NOT NULL DEFAULT '[]',
  cc_addrs    TEXT NOT NULL DEFAULT '[]',
  subject     TEXT NOT NULL DEFAULT '',
  body_text   TEXT NOT NULL DEFAULT '',
  body_html   TEXT,
  headers     TEXT NOT NULL DEFAULT '{}',
  attachments TEXT NOT NULL DEFAULT '[]',
  raw_sha256  TEXT REFERENCES raw_messages(sha256),
  sent_date   INTEGER,
  created_at  INTEGER NOT NULL,
  public      INTEGER NOT NULL DEFAULT 1
);
-- Deduplication by Message-ID per mailbox for inbound mail.
CREATE UNIQUE INDEX messages_inbound_dedup ON messages (mailbox, message_id) WHERE direction = 'in';
CREATE INDEX messages_message_id ON messages (message_id);
CREATE INDEX messages_ticket ON messages (ticket_id, id);
-- Per-recipient rate limit on automatic replies.
CREATE INDEX messages_out_rcpt ON messages (rcpt, kind, created_at) WHERE rcpt IS NOT NULL;

-- What became of each IMAP message, keyed by (mailbox, UIDVALIDITY, UID):
-- a receipt is written in the same transaction as the message's effects.
CREATE TABLE imap_receipts (
  mailbox       TEXT NOT NULL,
  uid_validity  INTEGER NOT NULL,
  uid           INTEGER NOT NULL,
  outcome       TEXT NOT NULL CHECK (outcome IN ('taken', 'threaded', 'recorded', 'ignored', 'duplicate', 'quarantined')),
  message_row   INTEGER REFERENCES messages(id),
  quarantine_id INTEGER REFERENCES quarantine(id),
  -- Set once the message was moved or flagged on the server.
  settled_at    INTEGER,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (mailbox, uid_validity, uid)
) WITHOUT ROWID;
CREATE INDEX imap_receipts_unsettled ON imap_receipts (mailbox, uid_validity, settled_at);

CREATE TABLE mailbox_cursors (
  mailbox      TEXT PRIMARY KEY,
  uid_validity INTEGER NOT NULL,
  last_uid     INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);

CREATE TABLE quarantine (
  id          INTEGER PRIMARY KEY,
  mailbox     TEXT NOT NULL,
  origin      TEXT NOT NULL,
  raw_sha256  TEXT NOT NULL REFERENCES raw_messages(sha256),
  reason      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  released_at INTEGER,
  release_outcome TEXT
);
CREATE INDEX quarantine_open ON quarantine (released_at, id);

-- Public and internal history of a ticket (status changes, links, bounces).
CREATE TABLE events (
  id         INTEGER PRIMARY KEY,
  ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
  type       TEXT NOT NULL,
  public     INTEGER NOT NULL DEFAULT 1,
  detail     TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, id);

-- Durable queue of outgoing mail. A row is marked sent only after the
-- server accepted it; retries follow the configured schedule.
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  message_row     INTEGER NOT NULL UNIQUE REFERENCES messages(id),
  mailbox         TEXT NOT NULL,
  envelope_from   TEXT NOT NULL,
  envelope_to     TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error      TEXT,
  sent_at         INTEGER,
  created_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Status-page links, one per (ticket, recipient). The token is
-- HMAC(site key, nonce) with a random 128-bit nonce, so every later mail can
-- carry the same link while the database alone cannot reproduce it; lookups
-- go through its SHA-256.
CREATE TABLE status_tokens (
  id         INTEGER PRIMARY KEY,
  ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
  recipient  TEXT NOT NULL,
  nonce      TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE UNIQUE INDEX status_tokens_active ON status_tokens (ticket_id, recipient) WHERE revoked_at IS NULL;

-- Addresses we must not auto-answer any more (hard bounces).
CREATE TABLE suppressions (
  address    TEXT PRIMARY KEY,
  reason     TEXT NOT NULL,
  created_at INTEGER NOT NULL
);

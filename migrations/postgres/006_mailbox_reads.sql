-- When each IMAP mailbox was last read, for `ticketd doctor`: a worker that
-- stays up but no longer reads its folder (a stalled session, a server that
-- refuses what the worker needs) shows as a read time that stops moving.
CREATE TABLE mailbox_reads (
  mailbox       TEXT PRIMARY KEY,
  -- Set when a running ticketd starts watching the mailbox, NULL once it
  -- stopped cleanly: a stopped daemon is not a stalled one.
  watched_since BIGINT,
  -- The last pass over the folder that found nothing more to take, or the
  -- last batch committed from it.
  read_at       BIGINT
);

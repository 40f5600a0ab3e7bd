-- A node that is stopping hands its mailboxes over at once but stays alive
-- (its heartbeat goes on) until its last send is answered, since its outbox
-- and SLA claims count only while it lives. Meanwhile the other nodes share
-- the mailboxes as if it were gone.
ALTER TABLE nodes ADD COLUMN stopping_since BIGINT;

-- A sent mail's status links are taken out of the stored copy in a
-- transaction of its own, after the sent mark: in the same transaction they
-- made the mark several statements per mail longer, and every moment between
-- the SMTP server's acceptance and the mark's commit is a mail sent twice if
-- the node is killed. The flag keeps that later work durable: a node killed
-- between the two leaves the flag set, and the next redaction pass (any
-- node's, at start or after its next sends) does it.
ALTER TABLE outbox ADD COLUMN redact_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_redact_pending ON outbox (id) WHERE redact_pending = 1;

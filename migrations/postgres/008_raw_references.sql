-- Dropping the raw bytes of a sent mail (status-link redaction) asks whether
-- any message or quarantine entry still points at them, and the database checks the
-- same for the foreign key on delete. Without these indexes each of those is a
-- scan of every message, once per mail sent.
CREATE INDEX messages_raw ON messages (raw_sha256) WHERE raw_sha256 IS NOT NULL;
CREATE INDEX quarantine_raw ON quarantine (raw_sha256);

-- Who an automatic reply goes to, and why none went out, decided in the
-- pipeline and recorded with the ticket so staff can see it; and a flag for
-- tickets whose sender a trusted MTA found forged (DMARC fail).
ALTER TABLE tickets ADD COLUMN ack_to TEXT;
ALTER TABLE tickets ADD COLUMN ack_withheld TEXT;
ALTER TABLE tickets ADD COLUMN flag TEXT;
-- The per-address ticket limit counts tickets by the address their reply goes to.
CREATE INDEX tickets_ack_to ON tickets (ack_to, created_at) WHERE ack_to IS NOT NULL;
-- The global hourly cap counts every automatic reply queued in the last hour.
CREATE INDEX messages_out_kind ON messages (kind, created_at) WHERE direction = 'out';

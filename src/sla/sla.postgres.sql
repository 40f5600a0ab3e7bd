-- PostgreSQL's dialect of sla.sql.

-- Several nodes tick. A tick reads its due tickets and records their
-- thresholds in one transaction; SKIP LOCKED hands each node other tickets
-- instead of making it wait for, then redo, another node's should SLA passes
-- ever run beside each other (today they take the exclusive write lock,
-- postgres-engine.ts); the unique key of sla_notices keeps any notice to once
-- either way.
-- name: sla-due
SELECT ticket_id AS ticketId FROM ticket_sla
WHERE next_due IS NOT NULL AND next_due <= @now
ORDER BY next_due LIMIT @limit
FOR UPDATE SKIP LOCKED;

-- PostgreSQL's dialect of tickets.sql.

-- A parameter first seen in `IS NULL` has no type PostgreSQL can infer: cast it.
-- name: list-tickets
SELECT t.ref, t.status, t.subject, t.requester, t.mailbox, t.queue, t.queue AS team, t.created_at AS createdAt,
       (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id) AS messageCount,
       (SELECT l.ref FROM tickets l WHERE l.id = t.linked_to) AS linkedTo
FROM tickets t
WHERE (CAST(@status AS TEXT) IS NULL OR t.status = @status) AND (CAST(@mailbox AS TEXT) IS NULL OR t.mailbox = @mailbox)
  AND (CAST(@id AS BIGINT) IS NULL OR t.id = @id)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
ORDER BY t.id;

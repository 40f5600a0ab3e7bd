-- SQLite's dialect of the status page's queries (status-page-store.ts): the
-- ids of one page arrive as a JSON array, which SQLite reads with json_each.

-- The messages of one page of the history (ids as a JSON array), each text
-- read only up to a bound so a long history never loads all of its bodies.
-- name: status-page-messages
SELECT id, direction, kind, from_addr AS "from", substr(body_text, 1, @maxChars) AS text,
       length(body_text) > @maxChars AS truncated, attachments, created_at AS at
FROM messages
WHERE ticket_id = @ticketId AND public = 1 AND kind IN ('request', 'reply', 'agent-reply')
  AND id IN (SELECT value FROM json_each(@ids))
ORDER BY id;

-- name: status-page-events
SELECT id, type, detail, created_at AS at
FROM events
WHERE ticket_id = @ticketId AND public = 1 AND type IN ('received', 'acknowledged', 'status', 'reopened', 'handoff')
  AND id IN (SELECT value FROM json_each(@ids))
ORDER BY id;

-- PostgreSQL's dialect of status-page.sql: the page's ids arrive as a JSON
-- array, which SQLite reads with json_each.

-- name: status-page-messages
SELECT id, direction, kind, from_addr AS "from", substr(body_text, 1, @maxChars) AS text,
       length(body_text) > @maxChars AS truncated, attachments, created_at AS at
FROM messages
WHERE ticket_id = @ticketId AND public = 1 AND kind IN ('request', 'reply', 'agent-reply')
  AND id IN (SELECT jsonb_array_elements_text(CAST(@ids AS JSONB))::BIGINT)
ORDER BY id;

-- name: status-page-events
SELECT id, type, detail, created_at AS at
FROM events
WHERE ticket_id = @ticketId AND public = 1 AND type IN ('received', 'acknowledged', 'status', 'reopened', 'handoff')
  AND id IN (SELECT jsonb_array_elements_text(CAST(@ids AS JSONB))::BIGINT)
ORDER BY id;

-- SQLite's dialect of service-report.sql: reading JSON in an event's detail.

-- The ratings given in the window, the latest of each ticket, as
-- (ref, queue, score, comment, at). Read from the internal `rated` events
-- until the ratings have a table of their own; pointing this query at that
-- table, with the same columns, is all the report needs.
-- name: report-ratings
SELECT t.ref, t.queue, CAST(json_extract(e.detail, '$.score') AS INTEGER) AS score,
       coalesce(json_extract(e.detail, '$.comment'), '') AS comment, e.created_at AS at
FROM events e JOIN tickets t ON t.id = e.ticket_id
WHERE e.type = 'rated' AND e.id = (SELECT max(l.id) FROM events l WHERE l.ticket_id = e.ticket_id AND l.type = 'rated')
  AND (CAST(@since AS BIGINT) IS NULL OR e.created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
ORDER BY e.id;

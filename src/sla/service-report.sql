-- Named queries of `ticketd report` and the report's gauges on /metrics
-- (service-report.ts). @since is an epoch-ms lower bound or NULL for all
-- time; @queue a queue name matched in any case, or NULL for every queue.
-- Figures of a ticket's course (response and resolution times, breaches,
-- handoffs, reopens) are over the tickets opened since @since; resolutions,
-- ratings and answers used are counted when they happened.

-- name: report-opened
SELECT queue, count(*) AS n FROM tickets
WHERE (CAST(@since AS BIGINT) IS NULL OR created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(queue) = lower(@queue))
GROUP BY queue;

-- A ticket resolved twice in the window (reopened between) counts once.
-- name: report-resolved
SELECT t.queue, count(DISTINCT e.ticket_id) AS n FROM events e JOIN tickets t ON t.id = e.ticket_id
WHERE e.type = 'status' AND e.detail LIKE '{"status":"resolved"%'
  AND (CAST(@since AS BIGINT) IS NULL OR e.created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
GROUP BY t.queue;

-- The course of each ticket opened in the window, with its SLA clock when it has one.
-- name: report-tickets
SELECT t.id, t.queue, t.mailbox, t.priority, t.status, t.created_at AS "createdAt",
       t.first_response_at AS "firstResponseAt", t.resolved_at AS "resolvedAt", t.closed_at AS "closedAt",
       s.policy, s.running_since AS "runningSince",
       s.fr_target_ms AS "frTargetMs", s.fr_used_ms AS "frUsedMs", s.fr_met_at AS "frMetAt",
       s.res_target_ms AS "resTargetMs", s.res_used_ms AS "resUsedMs", s.res_met_at AS "resMetAt"
FROM tickets t LEFT JOIN ticket_sla s ON s.ticket_id = t.id
WHERE (CAST(@since AS BIGINT) IS NULL OR t.created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
ORDER BY t.id;

-- Handoffs of the tickets opened in the window; tickets without one are not listed.
-- name: report-handoffs
SELECT t.queue, h.ticket_id AS "ticketId", count(*) AS n FROM handoffs h JOIN tickets t ON t.id = h.ticket_id
WHERE (CAST(@since AS BIGINT) IS NULL OR t.created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
GROUP BY t.queue, h.ticket_id;

-- Tickets opened in the window that a customer's reply reopened after they were resolved.
-- name: report-reopened
SELECT t.queue, count(DISTINCT e.ticket_id) AS n FROM events e JOIN tickets t ON t.id = e.ticket_id
WHERE e.type = 'reopened'
  AND (CAST(@since AS BIGINT) IS NULL OR t.created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
GROUP BY t.queue;

-- Each use of a vetted answer (an `answer_used` event, its name in the detail) in the window.
-- name: report-answers-used
SELECT t.queue, e.detail FROM events e JOIN tickets t ON t.id = e.ticket_id
WHERE e.type = 'answer_used'
  AND (CAST(@since AS BIGINT) IS NULL OR e.created_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
ORDER BY e.id;

-- The ratings given in the window: a ticket's latest, which replaced any
-- earlier one, as (ref, queue, score, comment, at).
-- name: report-ratings
SELECT t.ref, t.queue, r.score, r.comment, r.rated_at AS "at"
FROM ratings r JOIN tickets t ON t.id = r.ticket_id
WHERE (CAST(@since AS BIGINT) IS NULL OR r.rated_at >= @since)
  AND (CAST(@queue AS TEXT) IS NULL OR lower(t.queue) = lower(@queue))
ORDER BY r.rated_at, r.ticket_id;

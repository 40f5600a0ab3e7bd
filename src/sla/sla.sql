-- Named queries of the SLA engine (src/sla/sla-store.ts).

-- name: sla-state
SELECT ticket_id AS "ticketId", policy, running_since AS "runningSince",
       fr_target_ms AS "frTargetMs", fr_used_ms AS "frUsedMs", fr_met_at AS "frMetAt", fr_due_at AS "frDueAt",
       res_target_ms AS "resTargetMs", res_used_ms AS "resUsedMs", res_met_at AS "resMetAt", res_due_at AS "resDueAt",
       res_cycle AS "resCycle", res_started_at AS "resStartedAt", next_due AS "nextDue"
FROM ticket_sla WHERE ticket_id = ?;

-- name: sla-save
INSERT INTO ticket_sla (ticket_id, policy, running_since, fr_target_ms, fr_used_ms, fr_met_at, fr_due_at,
                        res_target_ms, res_used_ms, res_met_at, res_due_at, res_cycle, res_started_at, next_due, updated_at)
VALUES (@ticketId, @policy, @runningSince, @frTargetMs, @frUsedMs, @frMetAt, @frDueAt,
        @resTargetMs, @resUsedMs, @resMetAt, @resDueAt, @resCycle, @resStartedAt, @nextDue, @now)
ON CONFLICT (ticket_id) DO UPDATE SET
  policy = excluded.policy, running_since = excluded.running_since,
  fr_target_ms = excluded.fr_target_ms, fr_used_ms = excluded.fr_used_ms, fr_met_at = excluded.fr_met_at,
  fr_due_at = excluded.fr_due_at, res_target_ms = excluded.res_target_ms, res_used_ms = excluded.res_used_ms,
  res_met_at = excluded.res_met_at, res_due_at = excluded.res_due_at, res_cycle = excluded.res_cycle,
  res_started_at = excluded.res_started_at, next_due = excluded.next_due, updated_at = excluded.updated_at;

-- name: sla-remove
DELETE FROM ticket_sla WHERE ticket_id = ?;

-- name: sla-set-next-due
UPDATE ticket_sla SET next_due = @nextDue, updated_at = @now WHERE ticket_id = @ticketId;

-- name: sla-due
SELECT ticket_id AS "ticketId" FROM ticket_sla
WHERE next_due IS NOT NULL AND next_due <= @now
ORDER BY next_due LIMIT @limit;

-- name: sla-next-due
SELECT min(next_due) AS due FROM ticket_sla WHERE next_due IS NOT NULL;

-- name: sla-records
SELECT kind, target, cycle, threshold, outcome, reason, created_at AS "createdAt"
FROM sla_notices WHERE ticket_id = ? ORDER BY id;

-- name: sla-insert-record
INSERT INTO sla_notices (ticket_id, kind, target, cycle, threshold, outcome, reason, created_at)
VALUES (@ticketId, @kind, @target, @cycle, @threshold, @outcome, @reason, @now)
ON CONFLICT (ticket_id, kind, target, cycle, threshold) DO NOTHING;

-- name: sla-record-message
UPDATE sla_notices SET message_row = @messageRow
WHERE ticket_id = @ticketId AND kind = @kind AND target = @target AND cycle = @cycle AND threshold = @threshold;

-- name: sla-notices-queued
SELECT count(*) AS n FROM sla_notices WHERE ticket_id = ? AND kind = 'notice' AND outcome = 'queued';

-- name: sla-ack-suppressed
SELECT 1 FROM events WHERE ticket_id = ? AND type = 'ack-suppressed' LIMIT 1;

-- Median business time to a first response (or resolution) over a window:
-- count the samples, then read the middle one or two through the index.

-- name: sla-fr-sample-count
SELECT count(*) AS n FROM ticket_sla WHERE policy = @policy AND fr_met_at > @since AND fr_met_at <= @until;

-- name: sla-fr-sample-middle
SELECT fr_used_ms AS ms FROM ticket_sla WHERE policy = @policy AND fr_met_at > @since AND fr_met_at <= @until
ORDER BY fr_used_ms LIMIT @take OFFSET @skip;

-- name: sla-res-sample-count
SELECT count(*) AS n FROM ticket_sla WHERE policy = @policy AND res_met_at > @since AND res_met_at <= @until;

-- name: sla-res-sample-middle
SELECT res_used_ms AS ms FROM ticket_sla WHERE policy = @policy AND res_met_at > @since AND res_met_at <= @until
ORDER BY res_used_ms LIMIT @take OFFSET @skip;

-- name: sla-live-tickets
SELECT s.ticket_id AS "ticketId" FROM ticket_sla s JOIN tickets t ON t.id = s.ticket_id
WHERE t.status IN ('open', 'pending', 'on-hold')
ORDER BY s.next_due IS NULL, s.next_due, s.ticket_id;

-- The threshold a queued mail was sent for, checked again just before sending.
-- name: sla-record-by-message
SELECT ticket_id AS "ticketId", kind, target, cycle, threshold, outcome
FROM sla_notices WHERE message_row = ?;

-- name: sla-withdraw-outbox
UPDATE outbox SET status = 'withdrawn', last_error = @reason, next_attempt_at = @now
WHERE id = @outboxId AND status = 'pending';

-- name: sla-withdraw-record
UPDATE sla_notices SET outcome = 'withdrawn', reason = @reason WHERE message_row = @messageRow AND outcome = 'queued';

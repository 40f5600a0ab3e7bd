-- Named queries of the quarantine (quarantine-store.ts).

-- name: insert-quarantine
INSERT INTO quarantine (mailbox, origin, raw_sha256, reason, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id;

-- name: list-quarantine
SELECT q.id, q.mailbox, q.origin, q.reason, q.created_at AS "createdAt", q.released_at AS "releasedAt",
       q.release_outcome AS "releaseOutcome", r.size
FROM quarantine q JOIN raw_messages r ON r.sha256 = q.raw_sha256
WHERE (@all = 1 OR q.released_at IS NULL) ORDER BY q.id;

-- name: quarantine-by-id
SELECT q.id, q.mailbox, q.origin, q.reason, q.created_at AS "createdAt", q.released_at AS "releasedAt",
       q.release_outcome AS "releaseOutcome", r.size, r.data AS raw
FROM quarantine q JOIN raw_messages r ON r.sha256 = q.raw_sha256 WHERE q.id = ?;

-- name: release-quarantine
UPDATE quarantine SET released_at = ?, release_outcome = ? WHERE id = ?;

-- Named queries of the staff's ticket commands (notes, status changes) and
-- of discarding quarantined junk.

-- The stand-in a discarded quarantine entry points at once its bytes are
-- removed: 'discarded' can never equal a SHA-256 in hex, so no message's
-- bytes are ever mistaken for it, and the entry keeps its foreign key.
-- name: insert-discarded-raw
INSERT INTO raw_messages (sha256, size, data, created_at) VALUES ('discarded', 0, @empty, @now)
ON CONFLICT (sha256) DO NOTHING;

-- name: discard-quarantine
UPDATE quarantine SET raw_sha256 = 'discarded', released_at = @now, release_outcome = 'discarded'
WHERE id = @id AND released_at IS NULL;

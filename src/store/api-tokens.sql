-- Named queries of the JSON API's bearer tokens (api-token-store.ts, migration 011).

-- name: api-token-insert
INSERT INTO api_tokens (name, scope, token_hash, created_at) VALUES (@name, @scope, @hash, @now)
ON CONFLICT DO NOTHING RETURNING id;

-- name: api-token-by-hash
SELECT name, scope, token_hash AS "tokenHash", revoked_at AS "revokedAt" FROM api_tokens WHERE token_hash = @hash;

-- name: api-token-list
SELECT name, scope, created_at AS "createdAt", revoked_at AS "revokedAt" FROM api_tokens
WHERE (@all = 1 OR revoked_at IS NULL) ORDER BY id;

-- name: api-token-revoke
UPDATE api_tokens SET revoked_at = @now WHERE name = @name AND revoked_at IS NULL;

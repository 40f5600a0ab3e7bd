// The JSON API's bearer tokens as rows: made, listed, revoked, and looked up
// by the hash of what a request presents. Queries are in api-tokens.sql.

import { apiTokenHash, apiTokenWellFormed, newApiToken, sameApiTokenHash, type ApiTokenScope } from '../core/api-tokens.js';
import type { SqlEngine } from './sql-engine.js';

export const API_TOKEN_NAME_TAKEN = 'TICKETD_API_TOKEN_NAME_TAKEN';
export const API_TOKEN_NOT_FOUND = 'TICKETD_API_TOKEN_NOT_FOUND';

/** A token in force already has that name: revoke it first, or choose another. */
export class ApiTokenNameTakenError extends Error {
  readonly code = API_TOKEN_NAME_TAKEN;
  constructor(name: string) {
    super(`a token named ${JSON.stringify(name)} is in force already; revoke it first or choose another name`);
  }
}

/** No token in force has that name. */
export class ApiTokenNotFoundError extends Error {
  readonly code = API_TOKEN_NOT_FOUND;
  constructor(name: string) {
    super(`no token in force is named ${JSON.stringify(name)}`);
  }
}

export interface ApiTokenInfo {
  name: string;
  scope: ApiTokenScope;
  createdAt: number;
  revokedAt: number | null;
}

/** Who a request's token says it is; the API checks the scope against the route. */
export interface ApiCaller {
  name: string;
  scope: ApiTokenScope;
}

export class ApiTokenStore {
  constructor(private readonly engine: SqlEngine) {}

  /** Makes a token; the returned secret is the only copy there will ever be. */
  async create(name: string, scope: ApiTokenScope, now: number): Promise<{ token: string; info: ApiTokenInfo }> {
    const token = newApiToken();
    const row = await this.engine.get<{ id: number }>('api-token-insert', { name, scope, hash: apiTokenHash(token), now });
    if (!row) throw new ApiTokenNameTakenError(name);
    return { token, info: { name, scope, createdAt: now, revokedAt: null } };
  }

  /** Tokens in force (with `all`, the revoked ones too); never a secret, which is not kept. */
  list(opts: { all?: boolean } = {}): Promise<ApiTokenInfo[]> {
    return this.engine.all<ApiTokenInfo>('api-token-list', { all: opts.all ? 1 : 0 });
  }

  async revoke(name: string, now: number): Promise<void> {
    const { changes } = await this.engine.run('api-token-revoke', { name, now });
    if (changes === 0) throw new ApiTokenNotFoundError(name);
  }

  /** The caller a presented token stands for, or null: unknown, malformed and revoked tokens alike. */
  async verify(token: string): Promise<ApiCaller | null> {
    if (!apiTokenWellFormed(token)) return null;
    const hash = apiTokenHash(token);
    const row = await this.engine.get<{ name: string; scope: ApiTokenScope; tokenHash: string; revokedAt: number | null }>(
      'api-token-by-hash',
      { hash },
    );
    // The lookup is by hash; comparing again in constant time keeps an index's early exit from mattering.
    if (!row || !sameApiTokenHash(row.tokenHash, hash) || row.revokedAt !== null) return null;
    return { name: row.name, scope: row.scope };
  }
}

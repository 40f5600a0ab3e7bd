import os from 'node:os';
import type { Config } from '../config/load-config.js';
import { isPostgresUrl } from '../config/schema.js';
import { resolveSecret } from '../config/secrets.js';
import type { Logger } from '../core/logger.js';
import { PostgresEngine } from './postgres-engine.js';
import type { SqlEngine } from './sql-engine.js';
import { SqliteEngine } from './sqlite-engine.js';

/**
 * The engine `database` chooses: a `postgres://` or `postgresql://` URL opens
 * PostgreSQL (the password from the URL, `postgres.passFile`, PGPASSWORD or
 * ~/.pgpass, in that order), anything else is a SQLite file.
 */
export function openEngine(config: Pick<Config, 'database' | 'postgres' | 'cluster'>, logger: Logger): SqlEngine {
  if (!isPostgresUrl(config.database)) return new SqliteEngine(config.database);
  const passFile = config.postgres?.passFile;
  return new PostgresEngine({
    url: config.database,
    password: passFile === undefined ? undefined : async () => (await resolveSecret({ passFile })).value,
    poolSize: config.postgres?.poolSize,
    applicationName: `ticketd ${config.cluster?.nodeName ?? os.hostname()}`,
    onConnectionError: (err) => logger.warn({ code: 'PG_CONNECTION_LOST', err: err.message }, 'a pooled PostgreSQL connection failed; the pool opens a new one'),
  });
}

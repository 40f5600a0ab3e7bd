import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { isPostgresUrl } from '../config/schema.js';
import BetterSqlite3 from 'better-sqlite3';
import { createPrivateFileSync } from '../core/private-files.js';
import { readSqliteHealth } from '../store/health-reads.js';

export const BACKUP_TARGET_EXISTS = 'TICKETD_BACKUP_TARGET_EXISTS';
export const BACKUP_SOURCE_MISSING = 'TICKETD_BACKUP_SOURCE_MISSING';
export const BACKUP_CORRUPT = 'TICKETD_BACKUP_CORRUPT';
export const BACKUP_POSTGRES = 'TICKETD_BACKUP_POSTGRES';

export class BackupError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'BackupError';
  }
}

export interface BackupResult {
  file: string;
  bytes: number;
  schemaVersion: number;
  tickets: number;
}

/**
 * Copies the database with SQLite's online backup, safe while the daemon
 * writes. The copy is checked (integrity_check) and made a single file in
 * rollback-journal mode under a temporary name, then renamed into place, so
 * `dest` is only ever a complete, verified backup.
 */
export async function backupDatabase(source: string, dest: string, opts: { force?: boolean } = {}): Promise<BackupResult> {
  if (isPostgresUrl(source)) {
    throw new BackupError(
      BACKUP_POSTGRES,
      'the database is PostgreSQL, which is backed up with its own tools: pg_dump --format=custom for a copy, ' +
        'pg_basebackup with WAL archiving for point-in-time recovery (see docs/postgres.md, Operations)',
    );
  }
  const file = resolve(dest);
  if (existsSync(file) && !opts.force) {
    throw new BackupError(BACKUP_TARGET_EXISTS, `${file} already exists; pass --force to replace it`);
  }
  if (!existsSync(source)) throw new BackupError(BACKUP_SOURCE_MISSING, `database ${source} does not exist`);
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  // Created first, so the copy of customer mail is private from its first byte.
  createPrivateFileSync(tmp);
  try {
    const db = new BetterSqlite3(source, { fileMustExist: true, timeout: 5_000 });
    try {
      await db.backup(tmp);
    } finally {
      db.close();
    }
    const result = await verify(tmp);
    renameSync(tmp, file);
    return { file, bytes: statSync(file).size, ...result };
  } finally {
    for (const leftover of [tmp, `${tmp}-journal`, `${tmp}-wal`, `${tmp}-shm`]) rmSync(leftover, { force: true });
  }
}

async function verify(path: string): Promise<{ schemaVersion: number; tickets: number }> {
  const copy = new BetterSqlite3(path, { fileMustExist: true });
  try {
    // The source runs in WAL mode; a backup should be one file that opens anywhere.
    copy.pragma('journal_mode = DELETE');
    const problems = (copy.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new BackupError(BACKUP_CORRUPT, `the copy failed integrity_check: ${problems.slice(0, 5).join('; ')}`);
    }
    const schemaVersion = copy.pragma('user_version', { simple: true }) as number;
    copy.close();
    return { schemaVersion, tickets: schemaVersion === 0 ? 0 : await readSqliteHealth(path, (h) => h.ticketCount()) };
  } finally {
    if (copy.open) copy.close();
  }
}

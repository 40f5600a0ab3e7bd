// Only `start` and `migrate` change a schema, on either engine: every other
// command refuses a database with pending migrations, with one message and
// exit code whether `database` is a SQLite file or a postgres:// URL, and
// leaves the schema as it found it. No mail server is needed: every config
// here sends into a folder.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, latestMigrationVersion, loadMigrations, migrationsDir } from '../../src/store/migrate.js';
import { PostgresEngine } from '../../src/store/postgres-engine.js';
import type { SqlEngine } from '../../src/store/sql-engine.js';
import { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { CLI } from '../harness/ticketd-env.js';

const root = mkdtempSync(join(tmpdir(), 'ticketd-pending-migrations-'));
let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
});

afterAll(async () => {
  await server?.stop();
  rmSync(root, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], input = ''): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: 'pipe' });
    child.stdin.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

/** One engine's database as a test sees it: where it is, how to open it directly, and its tables. */
interface Database {
  /** The `database` setting. */
  setting: string;
  open(): SqlEngine;
  tables(): Promise<string[]>;
}

let n = 0;
const engines: Record<'sqlite' | 'postgres', () => Promise<Database>> = {
  async sqlite() {
    const file = join(root, `db-${++n}`, 'ticketd.sqlite');
    return {
      setting: file,
      open: () => new SqliteEngine(file),
      async tables() {
        const db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
        try {
          const rows = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
            name: string;
          }[];
          return rows.map((r) => r.name);
        } finally {
          db.close();
        }
      },
    };
  },
  async postgres() {
    const url = await server.createDatabase();
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    return {
      setting: url,
      open: () => new PostgresEngine({ url, poolSize: 1 }),
      async tables() {
        const rows = await server.query<{ name: string }>(
          "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
          [],
          name,
        );
        return rows.map((r) => r.name);
      },
    };
  },
};

/** A config sending into a folder, with `database` as given. */
function configFor(database: string): string {
  const dir = join(root, `case-${++n}`);
  mkdirSync(dir);
  const config = join(dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      database,
      dataDir: join(dir, 'data'),
      publicUrl: 'https://support.example.com',
      http: { enabled: false },
      smtp: { transport: 'file', fileDir: join(dir, 'outbox'), from: 'Support <support@example.com>' },
      mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
    }),
  );
  return config;
}

/** The database as an older ticketd left it: its first three migrations applied. */
async function olderDatabase(db: Database): Promise<void> {
  const engine = db.open();
  try {
    await applyMigrations(engine, loadMigrations(migrationsDir(engine.kind)).slice(0, 3));
  } finally {
    await engine.close();
  }
}

async function versionOf(db: Database): Promise<number> {
  const engine = db.open();
  try {
    return await engine.schemaVersion();
  } finally {
    await engine.close();
  }
}

/** Commands that read or write the database; none of them may migrate it. */
const REF = 'ACME-7K3QH9';
const DATABASE_COMMANDS = [
  ['tickets', 'list'],
  ['tickets', 'show', REF],
  ['tickets', 'status', REF, 'pending'],
  ['sla', 'tick'],
  ['outbox', 'list'],
  ['quarantine', 'list'],
  ['templates', 'preview', 'ack', '--ticket', REF],
];

const MAIL =
  'From: a@customer.example\r\nTo: support@example.com\r\nSubject: hi\r\nMessage-ID: <p1@customer.example>\r\n\r\nhello\r\n';

describe.each(['sqlite', 'postgres'] as const)('pending migrations on %s', (kind) => {
  it('are refused by every command but start and migrate, which say to run ticketd migrate; the schema stays as it was', {
    timeout: 240_000,
  }, async () => {
    const db = await engines[kind]();
    await olderDatabase(db);
    const config = configFor(db.setting);
    const tables = await db.tables();
    const password = kind === 'postgres' ? new URL(db.setting).password : null;

    for (const args of DATABASE_COMMANDS) {
      const r = await cli([...args, '--config', config]);
      const what = args.join(' ');
      expect(r.code, `${what}: ${r.stderr}`).toBe(1);
      expect(r.stderr, what).toMatch(
        /^ticketd: TICKETD_MIGRATION_PENDING: database \S+ is at schema version 3 and this ticketd needs \d+: run `ticketd migrate` \(or start the daemon\) first$/m,
      );
      if (password !== null) expect(r.stderr, what).not.toContain(password);
    }
    // An MTA keeps the mail queued (75) until the operator has migrated.
    const ingest = await cli(['ingest', '--mailbox', 'support', '--config', config], MAIL);
    expect(ingest.code, ingest.stderr).toBe(75);
    expect(ingest.stderr).toContain('TICKETD_MIGRATION_PENDING');
    expect(ingest.stderr).toContain('run `ticketd migrate`');

    expect(await versionOf(db)).toBe(3);
    expect(await db.tables()).toEqual(tables);

    const migrate = await cli(['migrate', '--config', config]);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stderr).toContain(`migrated database from version 3 to ${latestMigrationVersion(migrationsDir(kind))}`);
    const after = await cli(['tickets', 'list', '--config', config]);
    expect(after.code, after.stderr).toBe(0);
    // Nothing but the table: no warning from the engine either.
    expect(after.stderr).toBe('');
    const taken = await cli(['ingest', '--mailbox', 'support', '--config', config], MAIL);
    expect(taken.code, taken.stderr).toBe(0);
  });

  it('of a brand-new database are applied by the first command that opens it, so the first delivery is taken', async () => {
    const db = await engines[kind]();
    const config = configFor(db.setting);
    const r = await cli(['ingest', '--mailbox', 'support', '--config', config], MAIL);
    expect(r.code, r.stderr).toBe(0);
    expect(await versionOf(db)).toBe(latestMigrationVersion(migrationsDir(kind)));
  });
});

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { configProblems } from '../harness/config-problems.js';
import { redactConfig } from '../../src/config/secrets.js';
import { openEngine } from '../../src/store/open-store.js';
import { PostgresEngine } from '../../src/store/postgres-engine.js';
import { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';
import { startTicketdEnv } from '../harness/ticketd-env.js';

const tmp = mkdtempSync(join(tmpdir(), 'ticketd-pgconfig-'));

function config(extra: Record<string, unknown>) {
  return {
    publicUrl: 'https://help.example.com/',
    smtp: { host: 'smtp.example.com', from: 'Support <support@example.com>' },
    mailboxes: [{ name: 'support', address: 'support@example.com', referencePrefix: 'ACME' }],
    ...extra,
  };
}

describe('a PostgreSQL database in the config', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('keeps the URL as written, needs a shared dataDir, and resolves a passFile against the config folder', () => {
    const cfg = parseConfig(
      config({ database: 'postgres://ticketd@db.example/ticketd', dataDir: '/srv/ticketd', postgres: { passFile: 'pg.pass' } }),
      '/etc/ticketd',
    );
    expect(cfg.database).toBe('postgres://ticketd@db.example/ticketd');
    expect(cfg.postgres).toEqual({ passFile: '/etc/ticketd/pg.pass', poolSize: 10 });
    expect(configProblems(config({ database: 'postgresql://db.example/ticketd' }))).toEqual([
      expect.stringMatching(/^dataDir: is required when database is a PostgreSQL URL/),
    ]);
    expect(configProblems(config({ postgres: { poolSize: 5 } }))).toEqual([
      expect.stringMatching(/^postgres: only applies when database is a postgres:\/\/ URL/),
    ]);
  });

  it('never shows the password of a database URL', () => {
    const cfg = parseConfig(
      config({ database: 'postgres://ticketd:s3cret@db.example/ticketd', dataDir: '/srv/ticketd' }),
      '/etc/ticketd',
    );
    expect(JSON.stringify(redactConfig(cfg))).not.toContain('s3cret');
    expect(redactConfig(cfg).database).toBe('postgres://ticketd:[redacted]@db.example/ticketd');
  });

  it('opens and migrates PostgreSQL for a URL, with the password from passFile, and SQLite for a path', async () => {
    const passFile = join(tmp, 'pg.pass');
    writeFileSync(passFile, `${server.password}\n`, { mode: 0o600 });
    const url = new URL(server.url());
    url.password = '';
    const pgEngine = await openEngine(url.toString(), { postgres: { passFile, poolSize: 2 } });
    try {
      expect(pgEngine).toBeInstanceOf(PostgresEngine);
      expect(await pgEngine.schemaVersion()).toBeGreaterThan(0);
    } finally {
      await pgEngine.close();
    }
    const sqlite = await openEngine(join(tmp, 'db.sqlite'));
    try {
      expect(sqlite).toBeInstanceOf(SqliteEngine);
    } finally {
      await sqlite.close();
    }
  });
});

describe('operations on a PostgreSQL database', () => {
  let env: Awaited<ReturnType<typeof startTicketdEnv>>;

  beforeAll(async () => {
    env = await startTicketdEnv({ database: 'postgres' });
  });

  afterAll(async () => {
    await env?.stop();
  });

  it("doctor checks the connection and the schema version without showing the password; backup points to PostgreSQL's tools", async () => {
    const migrate = await env.cli(['migrate']);
    expect(migrate.code, migrate.stderr).toBe(0);
    const doctor = await env.cli(['doctor']);
    const line = doctor.stdout.split('\n').find((l) => l.includes('database:'))!;
    expect(line).toMatch(
      /^OK\s+database: postgres:\/\/postgres:\[redacted\]@127\.0\.0\.1:\d+\/\w+: schema version \d+, writable, 0 ticket\(s\), 0 live node\(s\)$/,
    );
    const password = new URL(env.database).password;
    expect(doctor.stdout + doctor.stderr).not.toContain(password);

    const backup = await env.cli(['backup', join(env.dir, 'copy')]);
    expect(backup.code).not.toBe(0);
    expect(backup.stderr).toMatch(/PostgreSQL, which is backed up with its own tools: pg_dump/);
    expect(backup.stderr).not.toContain(password);
  });
});

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseTooNewError, loadMigrations } from '../../src/store/migrate.js';
import { createPool, isPostgresUrl, loadPostgresQueries, PostgresEngine, PostgresQueryError } from '../../src/store/postgres-engine.js';
import { migratePostgres, postgresMigrationsDir, postgresSchemaVersion } from '../../src/store/postgres-migrate.js';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

const TEST_QUERIES = new Map([
  ['put', 'INSERT INTO kv (k, v, n, data) VALUES (@k, @v, @n, @data) RETURNING id'],
  ['get', 'SELECT k, v, n AS numberValue, data, n > 1 AS big FROM kv WHERE k = ?'],
  ['count', 'SELECT count(*) AS n, sum(n) AS total FROM kv'],
  ['bump', 'UPDATE kv SET n = n + 1 WHERE k LIKE @prefix'],
]);

describe('PostgreSQL engine and migrations', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('chooses PostgreSQL only for postgres:// and postgresql:// URLs', () => {
    expect(isPostgresUrl('postgres://db.example/ticketd')).toBe(true);
    expect(isPostgresUrl('postgresql://u@db.example/ticketd')).toBe(true);
    expect(isPostgresUrl('./data/ticketd.sqlite')).toBe(false);
    expect(isPostgresUrl('/var/lib/postgres://odd.sqlite')).toBe(false);
  });

  it('mirrors the SQLite migrations number for number', () => {
    const sqlite = loadMigrations().map((m) => m.version);
    const postgres = loadMigrations(postgresMigrationsDir()).map((m) => m.version);
    expect(postgres).toEqual(sqlite);
  });

  it('migrates an empty database, and two nodes migrating at once apply each migration once', async () => {
    const url = await server.createDatabase();
    const pools = [createPool({ url }), createPool({ url })];
    try {
      const results = await Promise.all(pools.map((pool) => migratePostgres(pool)));
      const latest = loadMigrations(postgresMigrationsDir()).at(-1)!.version;
      expect(results.map((r) => r.to)).toEqual([latest, latest]);
      // one of them did the work, the other waited for the lock and found nothing to do
      expect(results.map((r) => r.from).sort()).toEqual([0, latest]);
      const applied = await pools[0]!.query('SELECT version FROM ticketd_schema ORDER BY version');
      expect(applied.rows.map((r) => r.version)).toEqual(loadMigrations(postgresMigrationsDir()).map((m) => m.version));
      expect(await postgresSchemaVersion(pools[0]!)).toBe(latest);
      expect(await migratePostgres(pools[1]!)).toEqual({ from: latest, to: latest });
    } finally {
      await Promise.all(pools.map((pool) => pool.end()));
    }
  });

  it('refuses a database newer than the code', async () => {
    const url = await server.createDatabase();
    const pool = createPool({ url });
    try {
      await migratePostgres(pool);
      await pool.query("INSERT INTO ticketd_schema (version, name, applied_at) VALUES (99, '099_future.sql', 0)");
      await expect(migratePostgres(pool)).rejects.toBeInstanceOf(DatabaseTooNewError);
    } finally {
      await pool.end();
    }
  });

  it('leaves the previous version intact when a migration fails', async () => {
    const url = await server.createDatabase();
    const pool = createPool({ url });
    try {
      const migrations = [
        { version: 1, name: '001_a.sql', sql: 'CREATE TABLE a (x int);' },
        { version: 2, name: '002_b.sql', sql: 'CREATE TABLE b (x int); INSERT INTO missing VALUES (1);' },
      ];
      await expect(migratePostgres(pool, migrations)).rejects.toThrow(/migration 002_b.sql failed/);
      expect(await postgresSchemaVersion(pool)).toBe(1);
      const tables = await pool.query("SELECT to_regclass('a') AS a, to_regclass('b') AS b");
      expect(tables.rows[0]).toEqual({ a: 'a', b: null });
    } finally {
      await pool.end();
    }
  });

  it('accepts every shared named query against the migrated schema', async () => {
    const url = await server.createDatabase();
    const pool = createPool({ url });
    await migratePostgres(pool);
    await pool.end();
    const engine = await PostgresEngine.open({ url });
    await engine.close();
  });

  it('refuses at open a named query the schema does not fit, naming it', async () => {
    const url = await server.createDatabase();
    const queries = new Map([['fine', 'SELECT 1 AS one'], ['broken', 'SELECT nope FROM nowhere']]);
    await expect(PostgresEngine.open({ url, queries })).rejects.toThrow(/broken: relation "nowhere" does not exist/);
  });

  it('refuses an override that replaces no shared query', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ticketd-overrides-'));
    try {
      await fs.writeFile(path.join(dir, 'x.sql'), '-- name: no-such-query\nSELECT 1;\n');
      expect(() => loadPostgresQueries(new Map([['real', 'SELECT 1']]), dir)).toThrow(PostgresQueryError);
      await fs.writeFile(path.join(dir, 'x.sql'), '-- name: real\nSELECT 2;\n');
      expect(loadPostgresQueries(new Map([['real', 'SELECT 1']]), dir).get('real')).toBe('SELECT 2;');
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  });

  describe('queries and transactions', () => {
    let engine: PostgresEngine;

    beforeAll(async () => {
      const url = await server.createDatabase();
      await server.query('CREATE TABLE kv (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, k TEXT UNIQUE, v TEXT, n BIGINT, data BYTEA)', [], new URL(url).pathname.slice(1));
      engine = await PostgresEngine.open({ url, queries: TEST_QUERIES });
    });

    afterAll(async () => {
      await engine?.close();
    });

    it('reads rows with SQLite-like values: numbers for 64-bit integers and sums, 1/0 for comparisons, Buffers for bytes', async () => {
      const inserted = await engine.get<{ id: number }>('put', { k: 'a', v: 'x', n: 2 ** 40, data: Buffer.from([0, 255]) });
      expect(typeof inserted!.id).toBe('number');
      expect(await engine.get('get', ['a'])).toEqual({ k: 'a', v: 'x', numberValue: 2 ** 40, data: Buffer.from([0, 255]), big: 1 });
      expect(await engine.get('count')).toEqual({ n: 1, total: 2 ** 40 });
      expect(await engine.get('get', ['none'])).toBeUndefined();
      expect(await engine.run('bump', { prefix: '%' })).toEqual({ changes: 1 });
      await expect(engine.all('no-such-query')).rejects.toThrow(/unknown named query no-such-query/);
    });

    it('commits a transaction that resolves and rolls back one that rejects', async () => {
      await engine.transaction(async (tx) => {
        await tx.run('put', { k: 't1', v: null, n: 1, data: null });
      });
      await expect(
        engine.transaction(async (tx) => {
          await tx.run('put', { k: 't2', v: null, n: 1, data: null });
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await engine.get('get', ['t1'])).toMatchObject({ k: 't1' });
      expect(await engine.get('get', ['t2'])).toBeUndefined();
    });

    it('undoes a failed savepoint and keeps the rest of the transaction', async () => {
      await engine.transaction(async (tx) => {
        await tx.run('put', { k: 's1', v: null, n: 1, data: null });
        // a unique violation aborts the statement; the savepoint lets the transaction go on
        await expect(
          tx.savepoint(async (sp) => {
            await sp.run('put', { k: 's2', v: null, n: 1, data: null });
            await sp.run('put', { k: 's1', v: null, n: 1, data: null });
          }),
        ).rejects.toThrow(/duplicate key/);
        await tx.savepoint(async (sp) => {
          await sp.run('put', { k: 's3', v: null, n: 1, data: null });
          await expect(sp.savepoint(async () => Promise.reject(new Error('inner')))).rejects.toThrow('inner');
        });
      });
      expect(await engine.get('get', ['s1'])).toMatchObject({ k: 's1' });
      expect(await engine.get('get', ['s2'])).toBeUndefined();
      expect(await engine.get('get', ['s3'])).toMatchObject({ k: 's3' });
    });

    it('runs transactions of different callers on different connections at once', async () => {
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const first = engine.transaction(async (tx) => {
        await tx.run('put', { k: 'c1', v: null, n: 1, data: null });
        await gate;
      });
      // the second commits while the first is still open; the first's row is not visible yet
      await engine.transaction(async (tx) => {
        await tx.run('put', { k: 'c2', v: null, n: 1, data: null });
        expect(await tx.get('get', ['c1'])).toBeUndefined();
      });
      release();
      await first;
      expect(await engine.get('get', ['c1'])).toMatchObject({ k: 'c1' });
    });
  });

  it('takes the password from a function when the URL has none', async () => {
    const url = new URL(server.url());
    url.password = '';
    let asked = 0;
    const pool = createPool({
      url: url.toString(),
      password: async () => {
        asked++;
        return server.password;
      },
    });
    try {
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(asked).toBe(1);
    } finally {
      await pool.end();
    }
  });
});

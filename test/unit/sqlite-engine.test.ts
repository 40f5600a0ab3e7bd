import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEngine } from '../../src/store/sqlite-engine.js';
import { applyMigrations } from '../../src/store/migrate.js';
import { loadNamedQueries } from '../../src/store/named-queries.js';

const QUERIES = new Map([
  ['insert', 'INSERT INTO t (name, n) VALUES (@name, @n) RETURNING id'],
  ['insert-pos', 'INSERT INTO t (name, n) VALUES (?, ?)'],
  ['by-name', 'SELECT id, name, n FROM t WHERE name = ?'],
  ['all', 'SELECT name, n FROM t ORDER BY id'],
  ['bump', 'UPDATE t SET n = n + 1 WHERE name = @name'],
  ['total', 'SELECT coalesce(sum(n), 0) AS n FROM t'],
  ['readiness-write-probe', 'UPDATE t SET n = n WHERE 0'],
]);
const SCHEMA = {
  version: 1,
  name: '001_t.sql',
  sql: 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER NOT NULL);',
};

let dir: string;
let engine: SqliteEngine<string>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ticketd-engine-'));
  engine = new SqliteEngine(join(dir, 'db.sqlite'), { queries: QUERIES, busyTimeoutMs: 50 });
  await engine.applyMigration(SCHEMA);
  await engine.checkQueries();
});

afterEach(async () => {
  await engine.close();
  rmSync(dir, { recursive: true, force: true });
});

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('SqliteEngine', () => {
  it('opens with WAL, synchronous FULL, foreign keys, secure delete and a busy timeout, in a private file', () => {
    expect(engine.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(engine.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(engine.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(engine.db.pragma('secure_delete', { simple: true })).toBe(1);
    expect(engine.db.pragma('busy_timeout', { simple: true })).toBe(50);
    expect(statSync(join(dir, 'db.sqlite')).mode & 0o077).toBe(0);
  });

  it('binds named and positional parameters; RETURNING gives the new id', async () => {
    const row = await engine.get<{ id: number }>('insert', { name: 'a', n: 1 });
    expect(row?.id).toBe(1);
    expect((await engine.run('insert-pos', ['b', 2])).changes).toBe(1);
    expect(await engine.get('by-name', ['b'])).toEqual({ id: 2, name: 'b', n: 2 });
    expect(await engine.get('by-name', ['nobody'])).toBeUndefined();
    expect(await engine.all('all')).toEqual([
      { name: 'a', n: 1 },
      { name: 'b', n: 2 },
    ]);
  });

  it('refuses a name it does not know, and a query that does not fit the schema when checked at start', async () => {
    await expect(engine.get('no-such-query')).rejects.toThrow(/unknown named query no-such-query/);
    const broken = new SqliteEngine(join(dir, 'db.sqlite'), { queries: new Map([['typo', 'SELECT nme FROM t']]) });
    try {
      await expect(broken.checkQueries()).rejects.toThrow(/no such column: nme/);
    } finally {
      await broken.close();
    }
  });

  it('prepares nothing before checkQueries, so a database waiting for migration still opens', async () => {
    const fresh = new SqliteEngine(join(dir, 'fresh.sqlite'), { queries: QUERIES });
    try {
      expect(await fresh.schemaVersion()).toBe(0);
      expect(await fresh.applyMigration(SCHEMA)).toBe(true);
      expect(await fresh.applyMigration(SCHEMA)).toBe(false);
      expect(await fresh.schemaVersion()).toBe(1);
      await fresh.checkQueries();
    } finally {
      await fresh.close();
    }
  });

  it('commits a transaction that resolves and rolls back one that rejects', async () => {
    await engine.transaction(async (tx) => {
      await tx.run('insert', { name: 'kept', n: 1 });
    });
    await expect(
      engine.transaction(async (tx) => {
        await tx.run('insert', { name: 'undone', n: 1 });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect((await engine.all<{ name: string }>('all')).map((r) => r.name)).toEqual(['kept']);
  });

  it("a commit that waits only for the engine skips the WAL's fsync, and the next transaction waits for the disk again", async () => {
    // read on the connection itself: a prepared PRAGMA keeps the value it was prepared with
    const level = () => engine.db.pragma('synchronous', { simple: true }) as number;
    const seen: number[] = [];
    await engine.transaction(
      async (tx) => {
        seen.push(level());
        await tx.run('insert', { name: 'marked', n: 1 });
      },
      'rows',
      'engine',
    );
    await expect(
      engine.transaction(
        async () => {
          seen.push(level());
          throw new Error('boom');
        },
        'rows',
        'engine',
      ),
    ).rejects.toThrow('boom');
    await engine.transaction(async () => {
      seen.push(level());
    });
    // NORMAL (1) while it ran, FULL (2) after, whether it committed or not
    expect(seen).toEqual([1, 1, 2]);
    expect(engine.db.pragma('synchronous', { simple: true })).toBe(2);
    // committed all the same: another connection reads it
    const other = new BetterSqlite3(join(dir, 'db.sqlite'), { readonly: true });
    try {
      expect(other.prepare('SELECT name FROM t').all()).toEqual([{ name: 'marked' }]);
    } finally {
      other.close();
    }
  });

  it('a savepoint that rejects undoes only its own writes', async () => {
    const outcome = await engine.transaction(async (tx) => {
      await tx.run('insert', { name: 'first', n: 1 });
      const failed = await tx
        .savepoint(async (sp) => {
          await sp.run('insert', { name: 'second', n: 1 });
          await sp.run('insert', { name: 'first', n: 1 }); // UNIQUE violation
        })
        .then(
          () => 'ok',
          (err: Error) => err.message,
        );
      await tx.savepoint(async (sp) => sp.run('insert', { name: 'third', n: 1 }));
      return failed;
    });
    expect(outcome).toMatch(/UNIQUE/);
    expect((await engine.all<{ name: string }>('all')).map((r) => r.name)).toEqual(['first', 'third']);
  });

  it('serialises transactions that await between statements, so read-then-write never loses an update', async () => {
    await engine.run('insert', { name: 'c', n: 0 });
    const increment = () =>
      engine.transaction(async (tx) => {
        const row = await tx.get<{ n: number }>('by-name', ['c']);
        await tick();
        await tx.run('bump', { name: 'c' });
        return row!.n;
      });
    const seen = await Promise.all([increment(), increment(), increment()]);
    expect(seen.sort()).toEqual([0, 1, 2]);
    expect((await engine.get<{ n: number }>('by-name', ['c']))!.n).toBe(3);
  });

  it('a statement outside the open transaction waits for it: it neither sees its writes nor is rolled back with them', async () => {
    let inside!: () => void;
    const started = new Promise<void>((r) => (inside = r));
    const tx = engine
      .transaction(async (t) => {
        await t.run('insert', { name: 'doomed', n: 1 });
        inside();
        await tick();
        throw new Error('rolled back');
      })
      .catch(() => 'rolled back');
    await started;
    const outside = engine.run('insert', { name: 'outside', n: 1 });
    const total = engine.get<{ n: number }>('total');
    expect(await tx).toBe('rolled back');
    await outside;
    expect((await total)!.n).toBe(1);
    expect((await engine.all<{ name: string }>('all')).map((r) => r.name)).toEqual(['outside']);
  });

  it('using the engine inside its own transaction fails instead of waiting for ever', async () => {
    await expect(engine.transaction(async () => engine.get('total'))).rejects.toThrow(/inside its own transaction/);
    await expect(engine.transaction(async () => engine.transaction(async () => 1))).rejects.toThrow(/do not nest/);
  });

  it('a transaction session used after its end throws', async () => {
    let kept!: Parameters<Parameters<SqliteEngine<string>['transaction']>[0]>[0];
    await engine.transaction(async (tx) => {
      kept = tx;
    });
    expect(() => kept.run('insert', { name: 'late', n: 1 })).toThrow(/already ended/);
  });

  it('begins IMMEDIATE: a transaction fails with SQLITE_BUSY after the busy timeout while another process writes', async () => {
    const other = new BetterSqlite3(join(dir, 'db.sqlite'));
    other.exec('BEGIN IMMEDIATE');
    try {
      await expect(engine.transaction(async (tx) => tx.get('total'))).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
      expect(await engine.probeWrite()).toMatchObject({ ok: false, code: 'SQLITE_BUSY' });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    expect(await engine.probeWrite()).toEqual({ ok: true });
    // The lock was handed on after the failure.
    await engine.transaction(async (tx) => tx.run('insert', { name: 'after', n: 1 }));
  });
});

describe('named query files', () => {
  it('loads every shipped query for SQLite, the dialect files overriding shared names', () => {
    const sqlite = loadNamedQueries('sqlite');
    expect(sqlite.size).toBeGreaterThan(50);
    expect(sqlite.get('insert-raw')).toMatch(/INSERT INTO raw_messages/);
  });

  it('every shipped query prepares against the migrated schema', async () => {
    const real = new SqliteEngine(':memory:');
    try {
      await applyMigrations(real);
      await real.checkQueries();
    } finally {
      await real.close();
    }
  });
});

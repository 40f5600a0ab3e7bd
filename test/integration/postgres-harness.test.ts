import { existsSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type PostgresServer } from '../harness/postgres.js';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('postgres harness', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await startPostgres();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('runs a private cluster as an unprivileged user, with its socket in the temp dir', async () => {
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))![1]);
    expect(uid).not.toBe(0);
    expect(existsSync(path.join(server.socketDir, `.s.PGSQL.${server.port}`))).toBe(true);
    expect(server.socketDir.startsWith(server.dir)).toBe(true);
    const [row] = await server.query<{ dir: string; version: string }>(
      "SELECT current_setting('data_directory') AS dir, current_setting('server_version_num') AS version",
    );
    expect(row!.dir.startsWith(server.dir)).toBe(true);
    expect(Number(row!.version)).toBeGreaterThanOrEqual(150000);
  });

  it('asks for the password over TCP', async () => {
    const wrong = new pg.Client({
      host: server.host,
      port: server.port,
      user: server.user,
      password: 'wrong',
      database: 'postgres',
    });
    await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
    const right = new pg.Client({ connectionString: server.url() });
    await right.connect();
    expect((await right.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await right.end();
  });

  it('hands out separate empty databases', async () => {
    const a = await server.createDatabase();
    const b = await server.createDatabase();
    expect(a).not.toBe(b);
    const nameA = new URL(a).pathname.slice(1);
    const nameB = new URL(b).pathname.slice(1);
    await server.query('CREATE TABLE t (x int)', [], nameA);
    await server.query('INSERT INTO t VALUES (1)', [], nameA);
    expect(await server.query('SELECT x FROM t', [], nameA)).toEqual([{ x: 1 }]);
    expect(await server.query("SELECT to_regclass('t') AS t", [], nameB)).toEqual([{ t: null }]);
  });

  it('stops the server and removes its directory', async () => {
    const other = await startPostgres();
    expect(await portOpen(other.port)).toBe(true);
    await other.stop();
    expect(await portOpen(other.port)).toBe(false);
    expect(existsSync(other.dir)).toBe(false);
    expect(() => statSync(`/proc/${other.pid}`)).toThrow();
    await other.stop();
  });
});

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

/** The newest major of Debian's postgresql packages; PG_BINDIR points elsewhere (a source build, say). */
const bindir = (): string => process.env.PG_BINDIR ?? debianBindir();
const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
/** initdb and postgres refuse to run as root; as root the cluster belongs to this account (Debian's package creates it). */
const SERVER_ACCOUNT = 'postgres';
const SUPERUSER = 'postgres';

export interface PostgresServer {
  host: string;
  port: number;
  /** The postmaster's process id. */
  pid: number;
  /** Private temp dir holding the cluster (`data/`), the unix socket and the log. */
  dir: string;
  /** Where the unix socket lives (`.s.PGSQL.<port>`), so the cluster never touches /var/run/postgresql. */
  socketDir: string;
  logFile: string;
  /** The superuser, who logs in over TCP with `password` (scram-sha-256). */
  user: string;
  password: string;
  /** A `postgres://` URL for `database` on this server, password included. */
  url(database?: string): string;
  /** Creates an empty database with a fresh name and returns its URL. */
  createDatabase(prefix?: string): Promise<string>;
  /** Runs one statement as the superuser in `database` (default `postgres`) and returns the rows. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Stops the server (fast shutdown), waits for it to exit and removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
}

export interface PostgresOptions {
  /** Extra `-c name=value` settings, e.g. a lower max_connections. */
  settings?: Record<string, string | number>;
}

/**
 * Starts a private PostgreSQL: initdb in a temporary directory, a free loopback
 * port, the socket in the same directory. Durability settings are off: a test
 * cluster is thrown away, and fsync on two shared cores only makes tests slow.
 */
export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresServer> {
  const account = await serverAccount();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ticketd-postgres-'));
  const paths = {
    data: path.join(dir, 'data'),
    socketDir: path.join(dir, 'run'),
    log: path.join(dir, 'postgres.log'),
    pwfile: path.join(dir, 'pwfile'),
  };
  const password = randomBytes(12).toString('hex');
  let server: ChildProcess | undefined;
  try {
    await fs.mkdir(paths.socketDir);
    await fs.writeFile(paths.pwfile, `${password}\n`, { mode: 0o600 });
    if (account !== undefined) {
      for (const p of [dir, paths.socketDir, paths.pwfile]) await fs.chown(p, account.uid, account.gid);
    }
    await run(account, path.join(bindir(), 'initdb'), [
      '--pgdata',
      paths.data,
      '--username',
      SUPERUSER,
      '--pwfile',
      paths.pwfile,
      // the socket is private to the temp dir; TCP needs the password, as a real deployment does
      '--auth-local',
      'trust',
      '--auth-host',
      'scram-sha-256',
      '--encoding',
      'UTF8',
      '--locale',
      'C',
      '--no-sync',
    ]);
    await fs.rm(paths.pwfile);
    const started = await launch(account, paths, opts.settings ?? {});
    server = started.child;
    const port = started.port;

    // a crashed test file must not leave a server behind holding a port
    const killOnExit = (): void => {
      server?.kill('SIGKILL');
    };
    process.once('exit', killOnExit);

    const url = (database = 'postgres') =>
      `postgres://${SUPERUSER}:${encodeURIComponent(password)}@${HOST}:${port}/${encodeURIComponent(database)}`;
    const query = async <T extends pg.QueryResultRow>(
      sql: string,
      params: unknown[] = [],
      database = 'postgres',
    ): Promise<T[]> => {
      const client = new pg.Client({ connectionString: url(database) });
      await client.connect();
      try {
        return (await client.query<T>(sql, params)).rows;
      } finally {
        await client.end();
      }
    };
    let stopped = false;
    return {
      host: HOST,
      port,
      pid: started.child.pid!,
      dir,
      socketDir: paths.socketDir,
      logFile: paths.log,
      user: SUPERUSER,
      password,
      url,
      query,
      async createDatabase(prefix = 'ticketd') {
        const name = `${prefix}_${randomBytes(4).toString('hex')}`;
        await query(`CREATE DATABASE ${name}`);
        return url(name);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', killOnExit);
        await stopServer(started.child);
        await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
      },
    };
  } catch (err) {
    if (server !== undefined) await stopServer(server);
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw err;
  }
}

function debianBindir(): string {
  const root = '/usr/lib/postgresql';
  let majors: number[] = [];
  try {
    majors = readdirSync(root).map(Number).filter(Number.isInteger);
  } catch {
    // reported below with what to install
  }
  if (majors.length === 0)
    throw new Error(`no PostgreSQL under ${root}: install Debian's postgresql package (test/setup-machine.sh does)`);
  return path.join(root, String(Math.max(...majors)), 'bin');
}

interface Account {
  uid: number;
  gid: number;
}

async function serverAccount(): Promise<Account | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', SERVER_ACCOUNT]).then((r) => Number(r.stdout.trim())),
      execFileAsync('id', ['-g', SERVER_ACCOUNT]).then((r) => Number(r.stdout.trim())),
    ]);
    return { uid, gid };
  } catch {
    throw new Error(
      `running as root needs the system user '${SERVER_ACCOUNT}' (created by Debian's postgresql-common) to own the test cluster`,
    );
  }
}

async function run(account: Account | undefined, file: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(file, args, { ...(account ?? {}), env: { ...process.env, LC_ALL: 'C' } });
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${path.basename(file)} failed: ${(err as Error).message}\n${stdout ?? ''}${stderr ?? ''}`);
  }
}

/**
 * Runs `postgres` in the foreground as our child on a free port; another
 * process may take that port first, so a bind failure retries with a new one.
 */
async function launch(
  account: Account | undefined,
  paths: { data: string; socketDir: string; log: string },
  settings: Record<string, string | number>,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(HOST);
    const all: Record<string, string | number> = {
      listen_addresses: HOST,
      port,
      unix_socket_directories: paths.socketDir,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: 200,
      ...settings,
    };
    const log = await fs.open(paths.log, 'a');
    if (account !== undefined) await fs.chown(paths.log, account.uid, account.gid);
    const child = spawn(
      path.join(bindir(), 'postgres'),
      ['-D', paths.data, ...Object.entries(all).flatMap(([k, v]) => ['-c', `${k}=${v}`])],
      {
        ...(account ?? {}),
        stdio: ['ignore', log.fd, log.fd],
        env: { ...process.env, LC_ALL: 'C' },
      },
    );
    await log.close();
    child.once('error', () => undefined);
    if (await waitForReady(port, child)) return { child, port };
    const text = await fs.readFile(paths.log, 'utf8').catch(() => '');
    if (!/could not bind|Address already in use/.test(text) || attempt >= START_ATTEMPTS) {
      throw new Error(`postgres exited before accepting connections on port ${port} (attempt ${attempt}); log:\n${text}`);
    }
  }
}

/**
 * True once pg_isready says "accepting connections" (startup and recovery are
 * over), false when the server exited first.
 */
async function waitForReady(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      await execFileAsync(path.join(bindir(), 'pg_isready'), ['-h', HOST, '-p', String(port), '-t', '2', '-q']);
      return true;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  child.kill('SIGKILL');
  throw new Error(`postgres on port ${port} did not accept connections within ${READY_TIMEOUT_MS} ms`);
}

/** SIGINT is PostgreSQL's fast shutdown: open sessions are ended, then it checkpoints and exits. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

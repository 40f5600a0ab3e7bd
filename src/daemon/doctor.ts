import { accessSync, constants, existsSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { ImapFlow } from 'imapflow';
import {
  ConfigError,
  loadRunnableConfig,
  smtpFor,
  type Config,
  type MailboxConfig,
  type SmtpConfig,
} from '../config/load-config.js';
import { createMailer } from '../send/mailer.js';
import { createImapClient } from '../sources/imap/imap-client.js';
import { withDeadline } from '../core/deadline.js';
import { imapDeadline } from '../sources/imap/imap-timeout.js';
import { isPostgresUrl } from '../config/schema.js';
import { redactUrlPassword, resolveSecret } from '../config/secrets.js';
import { latestMigrationVersion, loadMigrations, migrationsDir } from '../store/migrate.js';
import { HealthReads, readSqliteHealth, type MailboxRead } from '../store/health-reads.js';
import { PostgresEngine } from '../store/postgres-engine.js';
import { checkTemplates, formatProblem } from './templates-check.js';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  /** One line; never holds a secret. */
  detail: string;
}

/** Upper bound for each network check, so doctor answers well before a 60 s operation timeout. */
const CHECK_TIMEOUT_MS = 15_000;
const HTTP_PROBE_MS = 2_000;
/** The schema version that brought the mailbox_reads table (migration 006). */
const MAILBOX_READS_SCHEMA = 6;

export function formatCheck(c: DoctorCheck): string {
  return `${c.ok ? 'OK    ' : 'FAILED'}  ${c.name}: ${c.detail}`;
}

/**
 * The checks behind `ticketd doctor`, yielded as each finishes so a slow
 * server shows up while it is being waited for. Every failure becomes a
 * failed check; nothing here throws for a broken installation.
 */
export async function* runDoctor(configPath: string): AsyncGenerator<DoctorCheck> {
  let config: Config;
  try {
    config = loadRunnableConfig(configPath);
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [errorText(err)];
    yield { name: 'config', ok: false, detail: problems.join('; ') };
    return;
  }
  yield { name: 'config', ok: true, detail: `${configPath}: ${config.mailboxes.length} mailbox(es)` };
  let reads: Map<string, MailboxRead>;
  if (isPostgresUrl(config.database)) {
    const checked = await checkPostgres(config);
    yield checked.check;
    reads = checked.reads;
  } else {
    yield await checkDatabase(config.database);
    reads = await mailboxReads(config.database);
  }
  yield templatesLine(config);
  for (const mailbox of config.mailboxes) {
    if (mailbox.imap) yield await checkImap(mailbox, CHECK_TIMEOUT_MS, reads.get(mailbox.name) ?? null);
  }
  for (const { smtp, mailboxes } of smtpServers(config)) yield await checkSmtp(smtp, mailboxes, CHECK_TIMEOUT_MS);
  yield await checkHttp(config);
  if (config.inbound) yield await checkInbound(config.inbound);
}

async function checkDatabase(path: string): Promise<DoctorCheck> {
  const name = 'database';
  if (!existsSync(path)) {
    const dir = nearestExisting(dirname(path));
    return writable(dir)
      ? { name, ok: true, detail: `${path} does not exist yet; it is created at the first start` }
      : { name, ok: false, detail: `${path} does not exist and ${dir} is not writable` };
  }
  let db: BetterSqlite3.Database | null = null;
  try {
    db = new BetterSqlite3(path, { fileMustExist: true, timeout: 5_000 });
    const version = db.pragma('user_version', { simple: true }) as number;
    const latest = loadMigrations().at(-1)?.version ?? 0;
    if (version > latest) {
      return { name, ok: false, detail: `${path}: schema version ${version} is newer than this ticketd (${latest})` };
    }
    // WAL mode writes -wal and -shm files next to the database.
    if (!writable(path) || !writable(dirname(path))) return { name, ok: false, detail: `${path} or its folder is not writable` };
    // Takes the write lock without writing: fails on a read-only file or a lock held too long.
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    const tickets = version === 0 ? 0 : await readSqliteHealth(path, (h) => h.ticketCount());
    const schema =
      version === latest
        ? `schema version ${version}`
        : `schema version ${version}, ${latest - version} migration(s) pending (applied at start)`;
    return { name, ok: true, detail: `${path}: ${schema}, writable, ${tickets} ticket(s)` };
  } catch (err) {
    return { name, ok: false, detail: `${path}: ${errorText(err)}` };
  } finally {
    db?.close();
  }
}

/**
 * The server answers with the password the config gives, the schema is one
 * this ticketd knows, a write transaction can run (not a standby, not
 * read-only); with the node heartbeats every running ticketd leaves.
 */
async function checkPostgres(config: Config): Promise<{ check: DoctorCheck; reads: Map<string, MailboxRead> }> {
  const name = 'database';
  const shown = redactUrlPassword(config.database);
  const reads = new Map<string, MailboxRead>();
  const engine = new PostgresEngine({
    url: config.database,
    password:
      config.postgres?.passFile === undefined
        ? undefined
        : async () => (await resolveSecret({ passFile: config.postgres!.passFile! })).value,
    poolSize: 1,
    applicationName: 'ticketd doctor',
  });
  try {
    const version = await withDeadline(engine.schemaVersion(), CHECK_TIMEOUT_MS, () => {
      throw new Error(`no answer within ${CHECK_TIMEOUT_MS} ms while connecting to PostgreSQL`);
    });
    const latest = latestMigrationVersion(migrationsDir('postgres'));
    if (version > latest)
      return {
        check: { name, ok: false, detail: `${shown}: schema version ${version} is newer than this ticketd (${latest})` },
        reads,
      };
    const probe = await engine.probeWrite();
    if (!probe.ok)
      return { check: { name, ok: false, detail: `${shown}: schema version ${version}, not writable (${probe.code})` }, reads };
    if (version === 0)
      return { check: { name, ok: true, detail: `${shown}: empty, writable; the schema is created at the first start` }, reads };
    const health = new HealthReads(engine);
    const tickets = await health.ticketCount();
    const nodes = version >= 10 ? await health.liveNodeCount(Date.now()) : 0;
    for (const [mailbox, read] of await health.mailboxReads()) reads.set(mailbox, read);
    const schema =
      version === latest
        ? `schema version ${version}`
        : `schema version ${version}, ${latest - version} migration(s) pending (applied at start)`;
    return {
      check: { name, ok: true, detail: `${shown}: ${schema}, writable, ${tickets} ticket(s), ${nodes} live node(s)` },
      reads,
    };
  } catch (err) {
    return { check: { name, ok: false, detail: `${shown}: ${errorText(err)}` }, reads };
  } finally {
    await engine.close();
  }
}

function templatesLine(config: Config): DoctorCheck {
  const checked = checkTemplates(config);
  if (checked.ok)
    return { name: 'templates', ok: true, detail: `${checked.templates.files.length} file(s) in ${config.templatesDir}` };
  return {
    name: 'templates',
    ok: false,
    detail: `${checked.problems.length} problem(s), first: ${formatProblem(checked.problems[0]!)} (all of them: ticketd templates check)`,
  };
}

/** Read-only and forgiving: a database that is missing, older than the table or unreadable has no reads, and the database line says why. */
async function mailboxReads(path: string): Promise<Map<string, MailboxRead>> {
  if (!existsSync(path)) return new Map();
  try {
    return await readSqliteHealth(path, async (h, version) => (version < MAILBOX_READS_SCHEMA ? new Map() : h.mailboxReads()));
  } catch {
    // checkDatabase reports the problem
    return new Map();
  }
}

/**
 * Whether a running ticketd keeps reading the mailbox: it reads at least once
 * per poll interval (IDLE ends after one too), and a pass may take one
 * operation timeout. A ticketd that stopped cleanly is not judged; one that
 * crashed or hangs still counts as watching, and is reported.
 */
function readingVerdict(mailbox: MailboxConfig, read: MailboxRead | null, now: number): { ok: boolean; text: string } | null {
  if (read === null || read.watchedSince === null) return null;
  const imap = mailbox.imap!;
  const last = Math.max(read.readAt ?? 0, read.watchedSince);
  const age = Math.max(0, now - last);
  if (age <= imap.pollIntervalMs + imap.operationTimeoutMs) return { ok: true, text: `read by ticketd ${duration(age)} ago` };
  const since = read.readAt === null ? `since it started watching ${duration(age)} ago` : `for ${duration(age)}`;
  return {
    ok: false,
    text: `but ticketd has not read it ${since} (poll interval ${duration(imap.pollIntervalMs)}); see IMAP_DISCONNECTED in its log`,
  };
}

function duration(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 3_600_000)} h`;
}

/** Connects, logs in and opens the folder read-only, the way the worker starts; then how recently the running ticketd read it. */
async function checkImap(mailbox: MailboxConfig, timeoutMs: number, read: MailboxRead | null): Promise<DoctorCheck> {
  const imap = mailbox.imap!;
  const name = `imap ${mailbox.name}`;
  const target = `${imap.auth.user} at ${imap.host}:${imap.port}, folder ${mailbox.folder}`;
  const ms = Math.min(imap.operationTimeoutMs, timeoutMs);
  let client: ImapFlow | null = null;
  let step = 'connect';
  try {
    client = await createImapClient(imap);
    // A broken connection is reported through the command that fails; unhandled it would end the process.
    client.on('error', () => undefined);
    await imapDeadline(client.connect(), ms, 'connect and login');
    step = 'open the folder';
    const opened = await imapDeadline(client.mailboxOpen(mailbox.folder, { readOnly: true }), ms, `EXAMINE ${mailbox.folder}`);
    const detail = `${target}: logged in, ${opened.exists} message(s) in the folder`;
    const reading = readingVerdict(mailbox, read, Date.now());
    return reading === null ? { name, ok: true, detail } : { name, ok: reading.ok, detail: `${detail}, ${reading.text}` };
  } catch (err) {
    return { name, ok: false, detail: `${target}: ${imapErrorText(err, step)}` };
  } finally {
    if (client) {
      await imapDeadline(client.logout(), ms, 'LOGOUT').catch(() => undefined);
      client.close();
    }
  }
}

/** The distinct servers the mailboxes send through, each checked once. */
function smtpServers(config: Config): { smtp: SmtpConfig; mailboxes: string[] }[] {
  const servers = new Map<string, { smtp: SmtpConfig; mailboxes: string[] }>();
  for (const mailbox of config.mailboxes) {
    const smtp = smtpFor(config, mailbox);
    const key = JSON.stringify([smtp.transport, smtp.host, smtp.port, smtp.secure, smtp.auth?.user, smtp.fileDir]);
    const entry = servers.get(key) ?? { smtp, mailboxes: [] };
    entry.mailboxes.push(mailbox.name);
    servers.set(key, entry);
  }
  return [...servers.values()];
}

async function checkSmtp(smtp: SmtpConfig, mailboxes: string[], timeoutMs: number): Promise<DoctorCheck> {
  const name = smtp.transport === 'file' ? `smtp file ${smtp.fileDir}` : `smtp ${smtp.host}:${smtp.port}`;
  const used = `used by ${mailboxes.join(', ')}`;
  const mailer = createMailer({ ...smtp, sendTimeoutMs: Math.min(smtp.sendTimeoutMs, timeoutMs) });
  try {
    await mailer.verify();
    return {
      name,
      ok: true,
      detail: `${smtp.transport === 'file' ? 'folder writable' : 'server ready'}${smtp.auth ? `, logged in as ${smtp.auth.user}` : ''} (${used})`,
    };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    return { name, ok: false, detail: `${typeof code === 'string' ? `${code}: ` : ''}${errorText(err)} (${used})` };
  } finally {
    mailer.close();
  }
}

async function checkHttp(config: Config): Promise<DoctorCheck> {
  const { host, port, enabled } = config.http;
  if (!enabled) return { name: 'http', ok: true, detail: 'disabled in the config' };
  return checkListen('http', host, port, async () => ((await answersAsTicketd(host, port)) ? 'it answers /metrics' : null));
}

/** The LMTP/SMTP listener's port, which start must be able to listen on as well. */
async function checkInbound(inbound: NonNullable<Config['inbound']>): Promise<DoctorCheck> {
  return checkListen('inbound', inbound.host, inbound.port, async () =>
    (await greetsAsTicketd(inbound.host, inbound.port)) ? 'it greets as ticketd' : null,
  );
}

/** Whether start could listen on host:port; a port held by a running ticketd (`ours` says how it knows) is fine. */
async function checkListen(name: string, host: string, port: number, ours: () => Promise<string | null>): Promise<DoctorCheck> {
  const where = `${host}:${port}`;
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, resolve);
    });
    return { name, ok: true, detail: `${where} can be listened on` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      const how = await ours();
      return how !== null
        ? { name, ok: true, detail: `${where} is in use by a running ticketd (${how})` }
        : { name, ok: false, detail: `${where} is in use by another program` };
    }
    if (code === 'EACCES')
      return { name, ok: false, detail: `${where}: not allowed to listen there (ports below 1024 need privileges)` };
    if (code === 'EADDRNOTAVAIL') return { name, ok: false, detail: `${where}: ${host} is not an address of this machine` };
    return { name, ok: false, detail: `${where}: ${errorText(err)}` };
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The listener's greeting names ticketd (its banner); another MTA's does not. */
function greetsAsTicketd(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let greeting = '';
    const done = (ours: boolean) => {
      socket.destroy();
      resolve(ours);
    };
    socket.setTimeout(HTTP_PROBE_MS, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (d: Buffer) => {
      greeting += d.toString('latin1');
      if (greeting.includes('\n')) done(/^220 .*ticketd/.test(greeting));
    });
  });
}

async function answersAsTicketd(host: string, port: number): Promise<boolean> {
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(HTTP_PROBE_MS) });
    return response.ok && (await response.text()).includes('ticketd_messages_taken_total');
  } catch {
    return false;
  }
}

function nearestExisting(dir: string): string {
  let current = dir;
  while (!existsSync(current) && dirname(current) !== current) current = dirname(current);
  return current;
}

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The server's answer and codes, never the command, which for LOGIN holds the password. */
function imapErrorText(err: unknown, step: string): string {
  const e = err as { authenticationFailed?: unknown; response?: unknown; responseText?: unknown; code?: unknown };
  const answer =
    typeof e.responseText === 'string' && e.responseText !== ''
      ? e.responseText
      : typeof e.response === 'string'
        ? e.response
        : '';
  if (e.authenticationFailed === true) return `login refused${answer ? ` (server said: ${answer})` : ''}`;
  const code = typeof e.code === 'string' ? ` [${e.code}]` : '';
  return `cannot ${step}: ${errorText(err)}${answer ? ` (server said: ${answer})` : ''}${code}`;
}

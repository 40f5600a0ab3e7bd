import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

const DOVECOT = '/usr/sbin/dovecot';
const DOVEADM = '/usr/bin/doveadm';
const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface MailUser {
  user: string;
  pass: string;
}

export interface FolderMessage {
  uid: number;
  flags: string[];
  messageId?: string;
}

export interface DovecotServer {
  host: string;
  port: number;
  /** Private temp dir holding config, sockets, state, log and the users' homes. */
  dir: string;
  users: MailUser[];
  logFile: string;
  /** Stops the server, waits for the master process to exit and removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
  /** IMAP APPEND as `user`; creates `folder` first when missing. Resolves to the new message's UID. */
  appendMessage(user: string, folder: string, raw: Buffer | string, flags?: string[]): Promise<number>;
  /**
   * Messages of `folder` in UID order, read with EXAMINE so flags stay untouched. `flags` is sorted and
   * leaves out \Recent, which only describes the listing session.
   */
  listFolder(user: string, folder: string): Promise<FolderMessage[]>;
  /** Drops `raw` into the user's INBOX `Maildir/new` the way a local delivery agent would, bypassing IMAP. */
  deliverToMaildir(user: string, raw: Buffer | string): Promise<void>;
  /**
   * Makes Dovecot report a new UIDVALIDITY for `folder` while keeping its messages (their UIDs restart
   * at 1). Open sessions of `user` are disconnected, as a real server does when it rebuilds a mailbox.
   */
  resetUidValidity(user: string, folder: string): Promise<void>;
  /**
   * Stops the master (clients see their connections close), runs `whileDown`, then starts it again on
   * the same port with the same mail.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** The post-login CAPABILITY list, as a client sees it. */
  capabilities(): Promise<string[]>;
}

export const DEFAULT_USERS: readonly MailUser[] = [
  { user: 'support@example.com', pass: 'secret' },
  { user: 'sales@example.com', pass: 'secret' },
];

export interface DovecotOptions {
  users?: MailUser[];
  /** Also accept OAuth2 bearer tokens (XOAUTH2, OAUTHBEARER), checked against this RFC 7662 introspection URL. */
  oauth2IntrospectionUrl?: string;
  /**
   * Capabilities left out of what Dovecot advertises after login (e.g. IDLE, MOVE, UIDPLUS), to stand in
   * for an older or plainer server. Dovecot still accepts the commands; a client going by the list does not send them.
   */
  withoutCapabilities?: string[];
}

export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotServer> {
  if (process.getuid?.() !== 0) {
    throw new Error('startDovecot must run as root: Dovecot is started from a private config and drops privileges itself');
  }
  const users = (opts.users ?? DEFAULT_USERS).map((u) => ({ ...u }));
  for (const { user, pass } of users) {
    // passwd-file is colon separated and line based
    if (/[:\s]/.test(user) || /[:\r\n]/.test(pass) || user === '') {
      throw new Error(`mail user ${JSON.stringify(user)} cannot be written to a passwd-file`);
    }
  }
  const mailOwner = await mailAccount();

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ticketd-dovecot-'));
  // login processes run as dovenull and mail processes as mail: both must traverse the tree
  await fs.chmod(dir, 0o755);
  const paths = {
    config: path.join(dir, 'dovecot.conf'),
    passwd: path.join(dir, 'passwd'),
    baseDir: path.join(dir, 'run'),
    stateDir: path.join(dir, 'state'),
    homes: path.join(dir, 'home'),
    log: path.join(dir, 'dovecot.log'),
    oauth2: opts.oauth2IntrospectionUrl === undefined ? null : path.join(dir, 'oauth2.conf.ext'),
    capability: null as string | null,
  };
  if (paths.oauth2 !== null) {
    await fs.writeFile(
      paths.oauth2,
      `introspection_mode = post\nintrospection_url = ${opts.oauth2IntrospectionUrl}\nusername_attribute = username\nactive_attribute = active\nactive_value = true\n`,
      { mode: 0o644 },
    );
  }
  await fs.mkdir(paths.baseDir, { mode: 0o755 });
  await fs.mkdir(paths.stateDir, { mode: 0o755 });
  await fs.mkdir(paths.homes, { mode: 0o755 });
  await fs.chown(paths.homes, mailOwner.uid, mailOwner.gid);
  await fs.writeFile(paths.passwd, users.map((u) => `${u.user}:{PLAIN}${u.pass}\n`).join(''), { mode: 0o644 });

  let port = 0;
  try {
    port = await launch(paths);
    await waitForGreeting(port, paths.log);
    if (opts.withoutCapabilities?.length) {
      // imap_capability replaces the whole list, so it is the server's own list minus the ones to hide
      const hidden = new Set(opts.withoutCapabilities.map((c) => c.toUpperCase()));
      const first = users[0]!;
      const all = await postLoginCapabilities(port, first.user, first.pass);
      paths.capability = all.filter((c) => !hidden.has(c.toUpperCase())).join(' ');
      await stopMaster(paths.baseDir);
      await launch(paths, port);
      await waitForGreeting(port, paths.log);
      const now = await postLoginCapabilities(port, first.user, first.pass);
      if (now.some((c) => hidden.has(c.toUpperCase())))
        throw new Error(`dovecot still advertises some of ${[...hidden].join(', ')}: ${now.join(' ')}`);
    }
  } catch (err) {
    await stopMaster(paths.baseDir);
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw err;
  }

  // a crashed test file must not leave a daemon behind holding a port
  const killOnExit = (): void => {
    const pid = readMasterPid(paths.baseDir);
    if (pid !== undefined) signal(pid, 'SIGTERM');
  };
  process.once('exit', killOnExit);

  const withClient = async <T>(user: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> => {
    const account = users.find((u) => u.user === user);
    if (account === undefined) {
      throw new Error(`unknown mail user ${user}; configured: ${users.map((u) => u.user).join(', ')}`);
    }
    const client = new ImapFlow({ host: HOST, port, secure: false, auth: { user, pass: account.pass }, logger: false });
    // failures surface through the rejected command promises; the listener keeps them from crashing the process
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.logout().catch(() => client.close());
    }
  };

  const folderStatus = (user: string, folder: string) =>
    withClient(user, async (client) => {
      const status = await client.status(folder, { messages: true, uidValidity: true });
      if (status === false || status.uidValidity === undefined || status.messages === undefined) {
        throw new Error(`STATUS ${folder} for ${user} returned no UIDVALIDITY/MESSAGES`);
      }
      return { uidValidity: status.uidValidity, messages: status.messages };
    });

  const maildirOf = (user: string): string => path.join(paths.homes, user, 'Maildir');

  let stopped = false;
  return {
    host: HOST,
    port,
    dir,
    users,
    logFile: paths.log,

    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', killOnExit);
      await stopMaster(paths.baseDir);
      await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },

    appendMessage(user, folder, raw, flags = []) {
      return withClient(user, async (client) => {
        if (folder !== 'INBOX') await client.mailboxCreate(folder);
        const result = await client.append(folder, raw, flags);
        if (result === false || result.uid === undefined) {
          throw new Error(`APPEND to ${folder} for ${user} reported no UID`);
        }
        return result.uid;
      });
    },

    listFolder(user, folder) {
      return withClient(user, async (client) => {
        const mailbox = await client.mailboxOpen(folder, { readOnly: true });
        if (mailbox.exists === 0) return [];
        const messages = await client.fetchAll('1:*', { uid: true, flags: true, envelope: true });
        return messages
          .map((m) => {
            const flags = [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort();
            const entry: FolderMessage = { uid: m.uid, flags };
            if (m.envelope?.messageId) entry.messageId = m.envelope.messageId;
            return entry;
          })
          .sort((a, b) => a.uid - b.uid);
      });
    },

    async deliverToMaildir(user, raw) {
      if (!users.some((u) => u.user === user)) throw new Error(`unknown mail user ${user}`);
      const maildir = maildirOf(user);
      for (const sub of [path.dirname(maildir), maildir, ...['cur', 'new', 'tmp'].map((d) => path.join(maildir, d))]) {
        await fs.mkdir(sub, { recursive: true, mode: 0o700 });
        await fs.chown(sub, mailOwner.uid, mailOwner.gid);
      }
      // Maildir delivery protocol: write under tmp/, then rename into new/ so readers never see a partial file
      const now = Date.now();
      const name = `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}P${process.pid}R${randomBytes(6).toString('hex')}.ticketd-harness`;
      const tmpFile = path.join(maildir, 'tmp', name);
      await fs.writeFile(tmpFile, raw, { mode: 0o600 });
      await fs.chown(tmpFile, mailOwner.uid, mailOwner.gid);
      await fs.rename(tmpFile, path.join(maildir, 'new', name));
    },

    async restart(whileDown) {
      await stopMaster(paths.baseDir);
      await whileDown?.();
      await launch(paths, port);
      await waitForGreeting(port, paths.log);
    },

    capabilities() {
      const first = users[0]!;
      return postLoginCapabilities(port, first.user, first.pass);
    },

    async resetUidValidity(user, folder) {
      const before = await folderStatus(user, folder);
      await kickUser(paths.config, user);

      const maildir = maildirOf(user);
      // Maildir++ layout: INBOX is the root, other folders are dot-prefixed subdirectories
      const folderDir = folder === 'INBOX' ? maildir : path.join(maildir, `.${folder}`);
      // UIDVALIDITY lives in the uidlist and the indexes; without them Dovecot rescans the
      // maildir and hands out the next value from dovecot-uidvalidity
      for (const [where, pattern] of [
        [folderDir, /^(dovecot-uidlist|dovecot\.index.*)$/],
        [maildir, /^dovecot\.list\.index.*$/],
      ] as const) {
        for (const file of await fs.readdir(where)) {
          if (pattern.test(file)) await fs.rm(path.join(where, file), { force: true });
        }
      }

      const after = await folderStatus(user, folder);
      if (after.uidValidity === before.uidValidity || after.messages !== before.messages) {
        throw new Error(
          `UIDVALIDITY reset of ${folder} for ${user} failed: before ${before.uidValidity}/${before.messages} messages, after ${after.uidValidity}/${after.messages} messages`,
        );
      }
    },
  };
}

async function mailAccount(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    execFileAsync('id', ['-u', 'mail']).then((r) => Number(r.stdout.trim())),
    execFileAsync('id', ['-g', 'mail']).then((r) => Number(r.stdout.trim())),
  ]);
  return { uid, gid };
}

function configText(
  paths: {
    baseDir: string;
    stateDir: string;
    log: string;
    passwd: string;
    homes: string;
    oauth2: string | null;
    capability: string | null;
  },
  port: number,
): string {
  return `# Private test instance: nothing from /etc/dovecot is included.
base_dir = ${paths.baseDir}
state_dir = ${paths.stateDir}
log_path = ${paths.log}
info_log_path = ${paths.log}
protocols = imap
listen = ${HOST}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login${paths.oauth2 ? ' xoauth2 oauthbearer' : ''}
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 100
${paths.capability === null ? '' : `imap_capability = ${paths.capability}\n`}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${paths.passwd}
}
${
  paths.oauth2
    ? `passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = ${paths.oauth2}
}
`
    : ''
}userdb {
  driver = static
  args = uid=mail gid=mail home=${paths.homes}/%u
}

service imap-login {
  inet_listener imap {
    address = ${HOST}
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
}

/**
 * Starts the master on a free port (or `fixedPort`, for a restart); another process may grab a free port
 * in between, so retry on EADDRINUSE.
 */
async function launch(paths: Parameters<typeof configText>[0] & { config: string }, fixedPort?: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort(HOST));
    await fs.writeFile(paths.config, configText(paths, port), { mode: 0o644 });
    // the master daemonizes after binding its listeners, so the exit code tells whether the bind worked
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(DOVECOT, ['-c', paths.config], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (exitCode) => resolve(exitCode));
    });
    if (code === 0) return port;
    const log = await fs.readFile(paths.log, 'utf8').catch(() => '');
    const portTaken = log.includes(`${port}) failed: Address already in use`);
    if (!portTaken || fixedPort !== undefined || attempt >= START_ATTEMPTS) {
      throw new Error(`dovecot exited with code ${code} on port ${port} (attempt ${attempt}); log:\n${log}`);
    }
  }
}

async function waitForGreeting(port: number, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const greeting = await readGreeting(port);
      if (greeting.startsWith('* OK')) return;
      lastError = `unexpected greeting ${JSON.stringify(greeting)}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(50);
  }
  const log = await fs.readFile(logFile, 'utf8').catch(() => '');
  throw new Error(`dovecot on port ${port} did not greet within ${READY_TIMEOUT_MS} ms (${lastError}); log:\n${log}`);
}

/** LOGIN over a raw socket and the CAPABILITY list of its tagged OK, exactly as the server words it. */
function postLoginCapabilities(port: number, user: string, pass: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let received = '';
    let sent = false;
    const quote = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
    socket.setTimeout(5_000, () => socket.destroy(new Error('timed out reading capabilities')));
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (!sent && received.includes('\r\n')) {
        sent = true;
        socket.write(`a LOGIN ${quote(user)} ${quote(pass)}\r\n`);
      }
      const tagged = /^a (OK|NO|BAD)([^\r\n]*)\r\n/m.exec(received);
      if (!tagged) return;
      socket.end('b LOGOUT\r\n');
      const inline = /\[CAPABILITY ([^\]]*)\]/.exec(tagged[2]!);
      if (tagged[1] !== 'OK' || !inline) reject(new Error(`LOGIN gave no capability list: ${tagged[0].trim()}`));
      else resolve(inline[1]!.split(' ').filter(Boolean));
    });
    socket.once('error', reject);
  });
}

function readGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let received = '';
    socket.setTimeout(2_000, () => socket.destroy(new Error('timed out waiting for greeting')));
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n');
      if (end >= 0) {
        socket.destroy();
        resolve(received.slice(0, end));
      }
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('connection closed before greeting')));
  });
}

/** Disconnects every session of `user` and waits for their imap processes to exit, so none rewrites the indexes. */
async function kickUser(config: string, user: string): Promise<void> {
  const who = await execFileAsync(DOVEADM, ['-c', config, 'who', '-1', user]);
  const pids = who.stdout
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols) => cols[0] === user)
    .map((cols) => Number(cols[2]))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
  if (pids.length === 0) return;
  await execFileAsync(DOVEADM, ['-c', config, 'kick', user]);
  await waitForExit(pids, STOP_TIMEOUT_MS);
}

function readMasterPid(baseDir: string): number | undefined {
  const pidFile = path.join(baseDir, 'master.pid');
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function stopMaster(baseDir: string): Promise<void> {
  const pid = readMasterPid(baseDir);
  if (pid === undefined || !isAlive(pid)) return;
  // what `dovecot -c config stop` does, minus its one-second polling interval
  signal(pid, 'SIGTERM');
  if (!(await waitForExit([pid], STOP_TIMEOUT_MS))) {
    signal(pid, 'SIGKILL');
    await waitForExit([pid], STOP_TIMEOUT_MS);
  }
}

async function waitForExit(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

/** A zombie counts as exited: the daemonized master is reparented and may not be reaped promptly. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // the process exited on its own in the meantime
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

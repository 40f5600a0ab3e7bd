// A private Cyrus IMAP server for integration tests. Debian's cyrus-imapd
// conflicts with dovecot-imapd, so it is never installed: test/setup-machine.sh
// unpacks its imapd and idled into a cache folder, and this harness runs them
// under cyrus-common's master with a config of its own in a temporary folder.
//
// The config is Debian's default namespace: `altnamespace: no` and
// `unixhierarchysep: no`, so a user's folders live under `INBOX.` with `.` as
// separator (`INBOX.Processed`). imapflow adds that prefix to a bare name, so
// tests name folders the same way for Cyrus and Dovecot.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { DEFAULT_USERS, type FolderMessage, type MailUser } from './dovecot.js';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

/** Where test/setup-machine.sh unpacks the cyrus-imapd package. */
export const CYRUS_IMAPD_ROOT = process.env.TICKETD_CYRUS_IMAPD_ROOT ?? '/var/cache/ticketd-test/cyrus-imapd';
const BIN = path.join(CYRUS_IMAPD_ROOT, 'usr/lib/cyrus/bin');
/** From cyrus-common, which coexists with Dovecot. */
const MASTER = '/usr/lib/cyrus/bin/master';
const CTL_CYRUSDB = '/usr/lib/cyrus/bin/ctl_cyrusdb';
const SASLPASSWD2 = '/usr/sbin/saslpasswd2';
const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface CyrusServer {
  host: string;
  port: number;
  /** Private temp dir holding config, databases, spool and sockets. */
  dir: string;
  users: MailUser[];
  /** What the master printed on stdout and stderr (Cyrus itself logs to syslog). */
  logFile: string;
  /** The personal namespace: folders are `INBOX.<name>`. */
  separator: '.';
  /** Stops the server and removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * Stops the master and every imapd (clients see their connections close), runs `whileDown`, then
   * starts again on the same port with the same mail.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  /** IMAP APPEND as `user`; creates `folder` first when missing. Resolves to the new message's UID. */
  appendMessage(user: string, folder: string, raw: Buffer | string, flags?: string[]): Promise<number>;
  /** Messages of `folder` in UID order, read with EXAMINE; `flags` sorted, without \Recent. */
  listFolder(user: string, folder: string): Promise<FolderMessage[]>;
}

export function cyrusAvailable(): boolean {
  return existsSync(path.join(BIN, 'imapd')) && existsSync(MASTER);
}

export async function startCyrus(opts: { users?: MailUser[] } = {}): Promise<CyrusServer> {
  if (process.getuid?.() !== 0) throw new Error('startCyrus must run as root: the Cyrus master drops to the cyrus user itself');
  if (!cyrusAvailable()) {
    throw new Error(`Cyrus is not unpacked under ${CYRUS_IMAPD_ROOT} (or cyrus-common is missing): run test/setup-machine.sh`);
  }
  const users = (opts.users ?? DEFAULT_USERS).map((u) => ({ ...u }));
  for (const { user, pass } of users) {
    if (!/^[a-z0-9._-]+@[a-z0-9.-]+$/.test(user) || /[\r\n]/.test(pass)) {
      throw new Error(`mail user ${JSON.stringify(user)} must be local@domain in lower case for Cyrus virtual domains`);
    }
  }
  const owner = await cyrusAccount();

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ticketd-cyrus-'));
  const paths = {
    dir,
    imapdConf: path.join(dir, 'imapd.conf'),
    cyrusConf: path.join(dir, 'cyrus.conf'),
    config: path.join(dir, 'config'),
    spool: path.join(dir, 'spool'),
    sasldb: path.join(dir, 'sasldb2'),
    pidFile: path.join(dir, 'master.pid'),
    log: path.join(dir, 'master.log'),
  };
  // imapd runs as cyrus: it must traverse the tree and own what it writes
  await fs.chmod(dir, 0o755);
  // idled listens on <configdirectory>/socket/idle; without it imapd polls in IDLE instead of pushing
  for (const sub of [paths.config, ...['socket', 'proc', 'lock'].map((s) => path.join(paths.config, s)), paths.spool]) {
    await fs.mkdir(sub, { recursive: true, mode: 0o750 });
    await fs.chown(sub, owner.uid, owner.gid);
  }
  await fs.writeFile(paths.imapdConf, imapdConf(paths), { mode: 0o644 });
  for (const { user, pass } of users) {
    const [local, domain] = user.split('@') as [string, string];
    await new Promise<void>((resolve, reject) => {
      const child = execFile(SASLPASSWD2, ['-p', '-c', '-f', paths.sasldb, '-u', domain, local], (err) =>
        err ? reject(err) : resolve(),
      );
      child.stdin!.end(pass);
    });
  }
  await fs.chown(paths.sasldb, owner.uid, owner.gid);
  await fs.chmod(paths.sasldb, 0o640);

  let master: ChildProcess | null = null;
  let port = 0;
  const launch = async (fixedPort: number | null): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const candidate = fixedPort ?? (await freePort(HOST));
      await fs.writeFile(paths.cyrusConf, cyrusConf(paths, candidate), { mode: 0o644 });
      const log = await fs.open(paths.log, 'a');
      // its own process group, so stop() reaches every imapd the master forked
      const child = spawn(MASTER, ['-C', paths.imapdConf, '-M', paths.cyrusConf, '-p', paths.pidFile], {
        stdio: ['ignore', log.fd, log.fd],
        detached: true,
      });
      await log.close();
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      try {
        await waitForGreeting(candidate, exited);
        master = child;
        port = candidate;
        return;
      } catch (err) {
        await killGroup(child);
        if (fixedPort !== null || attempt >= START_ATTEMPTS) {
          const text = await fs.readFile(paths.log, 'utf8').catch(() => '');
          throw new Error(
            `Cyrus did not start on port ${candidate} (attempt ${attempt}): ${(err as Error).message}; master output:\n${text}`,
          );
        }
      }
    }
  };

  try {
    await launch(null);
  } catch (err) {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
    throw err;
  }

  // a crashed test file must not leave a master behind holding a port
  const killOnExit = (): void => {
    if (master?.pid !== undefined) signalGroup(master.pid, 'SIGKILL');
  };
  process.once('exit', killOnExit);

  const withClient = async <T>(user: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> => {
    const account = users.find((u) => u.user === user);
    if (account === undefined) throw new Error(`unknown mail user ${user}; configured: ${users.map((u) => u.user).join(', ')}`);
    const client = new ImapFlow({ host: HOST, port, secure: false, auth: { user, pass: account.pass }, logger: false });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.logout().catch(() => client.close());
    }
  };

  // The first login creates the INBOX (autocreate_quota); do it now so every user has one from the start.
  for (const { user } of users) await withClient(user, (client) => client.status('INBOX', { messages: true }));

  let stopped = false;
  return {
    host: HOST,
    get port() {
      return port;
    },
    dir,
    users,
    logFile: paths.log,
    separator: '.',

    async stop() {
      if (stopped) return;
      stopped = true;
      process.removeListener('exit', killOnExit);
      if (master) await killGroup(master);
      master = null;
      await fs.rm(dir, { recursive: true, force: true, maxRetries: 5 });
    },

    async restart(whileDown) {
      if (master) await killGroup(master);
      master = null;
      await whileDown?.();
      await launch(port);
    },

    appendMessage(user, folder, raw, flags = []) {
      return withClient(user, async (client) => {
        // Cyrus answers CREATE of an existing folder with a plain NO, so look first
        if (folder !== 'INBOX' && !(await client.status(folder, { messages: true }).catch(() => false))) {
          await client.mailboxCreate(folder);
        }
        const result = await client.append(folder, raw, flags);
        if (result === false || result.uid === undefined) throw new Error(`APPEND to ${folder} for ${user} reported no UID`);
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
            const entry: FolderMessage = { uid: m.uid, flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort() };
            if (m.envelope?.messageId) entry.messageId = m.envelope.messageId;
            return entry;
          })
          .sort((a, b) => a.uid - b.uid);
      });
    },
  };
}

function imapdConf(p: { config: string; spool: string; sasldb: string }): string {
  const socket = path.join(p.config, 'socket');
  return `# Private test instance: nothing from /etc/imapd.conf is read.
configdirectory: ${p.config}
proc_path: ${path.join(p.config, 'proc')}
mboxname_lockpath: ${path.join(p.config, 'lock')}
defaultpartition: default
partition-default: ${p.spool}
# Debian's defaults: folders are INBOX.<name>
altnamespace: no
unixhierarchysep: no
# logins are local@domain, each domain its own namespace
virtdomains: userid
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: ${p.sasldb}
sasl_mech_list: PLAIN LOGIN
# the INBOX is created at the first login
autocreate_quota: 0
idlesocket: ${socket}/idle
notifysocket: ${socket}/notify
lmtpsocket: ${socket}/lmtp
syslog_prefix: ticketd-test-cyrus
`;
}

function cyrusConf(p: { imapdConf: string }, port: number): string {
  return `START {
  recover cmd="${CTL_CYRUSDB} -C ${p.imapdConf} -r"
}
SERVICES {
  imap cmd="${path.join(BIN, 'imapd')} -C ${p.imapdConf}" listen="${HOST}:${port}" prefork=0
}
DAEMON {
  idled cmd="${path.join(BIN, 'idled')} -C ${p.imapdConf}"
}
EVENTS {
  checkpoint cmd="${CTL_CYRUSDB} -C ${p.imapdConf} -c" period=30
}
`;
}

async function cyrusAccount(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    execFileAsync('id', ['-u', 'cyrus']).then((r) => Number(r.stdout.trim())),
    execFileAsync('id', ['-g', 'cyrus']).then((r) => Number(r.stdout.trim())),
  ]);
  return { uid, gid };
}

/** Waits for a Cyrus greeting: another server that grabbed the port would greet differently. */
async function waitForGreeting(port: number, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = '';
  while (Date.now() < deadline && !gone) {
    try {
      const greeting = await readGreeting(port);
      if (greeting.startsWith('* OK') && greeting.includes('Cyrus')) return;
      throw new Error(`port ${port} is held by another server: ${JSON.stringify(greeting)}`);
    } catch (err) {
      lastError = (err as Error).message;
      if (lastError.includes('another server')) throw err;
    }
    await sleep(50);
  }
  throw new Error(gone ? `the master exited (${lastError})` : `no greeting within ${READY_TIMEOUT_MS} ms (${lastError})`);
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

/** SIGTERM to the master's process group (imapd children included), SIGKILL if it lingers. */
async function killGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signalGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
  // imapd children of a dead master still hold client connections open; a stopped server closes them
  signalGroup(pid, 'SIGKILL');
  await waitForGroupExit(pid);
}

async function waitForGroupExit(pgid: number): Promise<void> {
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!(await groupAlive(pgid))) return;
    await sleep(25);
  }
}

async function groupAlive(pgid: number): Promise<boolean> {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state, fields[2] the process group
    if (fields[2] === String(pgid) && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

function signalGroup(pgid: number, name: NodeJS.Signals): void {
  try {
    process.kill(-pgid, name);
  } catch {
    // the group is gone already
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

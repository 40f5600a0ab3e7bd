import { inspect, isDeepStrictEqual } from 'node:util';
import type { Config, MailboxConfig } from '../config/load-config.js';
import { redactConfig } from '../config/secrets.js';

type Segment = string | number;

/** One changed setting, by JSON path, e.g. `mailboxes[0].imap.host`. */
export interface ChangedSetting {
  path: string;
  /** For a whole mailbox added or removed: its name. */
  mailbox?: string;
}

export interface ReloadPlan {
  /** The config the daemon runs with after the reload: the new one, with every setting that needs a restart kept as it runs now. */
  effective: Config;
  /** Changed settings that take effect now. */
  applied: ChangedSetting[];
  /** Changed settings that take effect only after a restart; until then the running value stays. */
  restartNeeded: ChangedSetting[];
  /** Mailboxes new in this config: their IMAP worker (if any) is started by the reload. */
  addedMailboxes: MailboxConfig[];
}

// What a running daemon reads afresh, so a reload takes it at once. Anything
// not listed here is bound when a worker, listener or the database is opened
// (the web server's address and proxies, the LMTP listener, the database and
// data folder, an IMAP session's server, folders and credentials), and is
// reported as needing a restart rather than claimed as applied.
const LIVE: readonly string[] = [
  'publicUrl',
  'templatesDir',
  'log.level',
  'smtp',
  'outbox',
  'limits',
  'authentication',
  'statusPage',
  'http.api',
  'calendars',
  'sla',
  'mailboxes[].address',
  'mailboxes[].aliases',
  'mailboxes[].referencePrefix',
  'mailboxes[].language',
  'mailboxes[].timezone',
  'mailboxes[].staffAddress',
  'mailboxes[].reopenWindowDays',
  'mailboxes[].smtp',
];

/**
 * Compares the running config with a newly loaded one: which changed
 * settings a reload applies, which wait for a restart, and the config to run
 * with meanwhile. Mailboxes are matched by name, so reordering them changes
 * nothing.
 */
export function planReload(running: Config, next: Config): ReloadPlan {
  const changed: Segment[][] = [];
  for (const key of keysOf(running, next)) {
    if (key === 'mailboxes') continue;
    diff((running as unknown as Record<string, unknown>)[key], (next as unknown as Record<string, unknown>)[key], [key], changed);
  }
  const runningByName = new Map(running.mailboxes.map((m) => [m.name, m]));
  const nextNames = new Set(next.mailboxes.map((m) => m.name));
  const addedMailboxes: MailboxConfig[] = [];
  const applied: ChangedSetting[] = [];
  const restartNeeded: ChangedSetting[] = [];
  next.mailboxes.forEach((mailbox, i) => {
    const before = runningByName.get(mailbox.name);
    if (before === undefined) {
      addedMailboxes.push(mailbox);
      applied.push({ path: formatPath(['mailboxes', i]), mailbox: mailbox.name });
    } else {
      diff(before, mailbox, ['mailboxes', i], changed);
    }
  });
  const removed = running.mailboxes.filter((m) => !nextNames.has(m.name));

  const effective = copySettings(next);
  for (const path of changed) {
    if (isLive(path)) {
      applied.push({ path: formatPath(path) });
    } else {
      restartNeeded.push({ path: formatPath(path) });
      restore(effective, running, next, path);
    }
  }
  // A removed mailbox's worker keeps running until the restart, so the
  // mailbox stays known to the pipeline it hands its mail to.
  for (const mailbox of removed) {
    restartNeeded.push({ path: formatPath(['mailboxes', running.mailboxes.indexOf(mailbox)]), mailbox: mailbox.name });
    effective.mailboxes.push(copySettings(mailbox));
  }
  return { effective: hideSecretsWhenPrinted(effective), applied, restartNeeded, addedMailboxes };
}

function isLive(path: Segment[]): boolean {
  const generic = formatPath(path).replace(/^mailboxes\[\d+\]/, 'mailboxes[]');
  return LIVE.some((prefix) => generic === prefix || generic.startsWith(`${prefix}.`) || generic.startsWith(`${prefix}[`));
}

/**
 * Leaf paths where `a` and `b` differ; arrays other than `mailboxes` count as
 * one setting, and so does a value the schema made (a duration, a calendar),
 * which is equal to another when it was read from the same text.
 */
function diff(a: unknown, b: unknown, path: Segment[], out: Segment[][]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const key of keysOf(a, b)) diff(a[key], b[key], [...path, key], out);
  } else if (!isDeepStrictEqual(a, b)) {
    out.push(path);
  }
}

/** Puts the running value of `path` back into `effective` (whose mailbox indexes are those of `next`). */
function restore(effective: Config, running: Config, next: Config, path: Segment[]): void {
  let source: unknown = running;
  let target: unknown = effective;
  const [first, index] = path;
  const rest = first === 'mailboxes' ? path.slice(2) : path.slice(1);
  if (first === 'mailboxes') {
    const name = next.mailboxes[index as number]!.name;
    source = running.mailboxes.find((m) => m.name === name);
    target = effective.mailboxes[index as number];
  } else {
    source = (running as unknown as Record<string, unknown>)[first as string];
    if (rest.length === 0) {
      setOrDelete(effective as unknown as Record<string, unknown>, first as string, source);
      return;
    }
    target = (effective as unknown as Record<string, unknown>)[first as string];
  }
  for (const segment of rest.slice(0, -1)) {
    source = (source as Record<string, unknown> | undefined)?.[segment as string];
    const parent = target as Record<string, unknown>;
    if (!isPlainObject(parent[segment as string])) parent[segment as string] = {};
    target = parent[segment as string];
  }
  const last = rest.at(-1) as string;
  setOrDelete(target as Record<string, unknown>, last, (source as Record<string, unknown> | undefined)?.[last]);
}

function setOrDelete(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) delete target[key];
  else target[key] = copySettings(value);
}

function keysOf(a: object, b: object): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])];
}

/** An object of settings; not an array, and not a value the schema made (Duration, Percent, BusinessCalendar). */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * A copy of settings to change without touching the loaded config: objects
 * and arrays copied, the schema's values shared (they are immutable, and a
 * structured clone would strip them to plain data). The loaded config's
 * non-enumerable printing hooks are left behind.
 */
function copySettings<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copySettings) as T;
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, copySettings(inner)])) as T;
}

/** The effective config prints redacted, like a loaded one. */
function hideSecretsWhenPrinted(config: Config): Config {
  Object.defineProperty(config, 'toJSON', { value: () => redactConfig(config), enumerable: false });
  Object.defineProperty(config, inspect.custom, { value: () => redactConfig(config), enumerable: false });
  return config;
}

function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

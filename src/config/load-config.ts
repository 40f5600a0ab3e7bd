import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { inspect } from 'node:util';
import type { z } from 'zod';
import { packageRoot } from './package-root.js';
import { configSchema, isPostgresUrl } from './schema.js';
import { CREDENTIAL_PREFIX, redactConfig, unreadablePassFiles } from './secrets.js';

export const CONFIG_INVALID = 'TICKETD_CONFIG_INVALID';

/** A config that cannot be used; `problems` has one line per problem, each naming its JSON path. */
export class ConfigError extends Error {
  readonly code = CONFIG_INVALID;

  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

type ParsedConfig = z.output<typeof configSchema>;

export type MailboxConfig = ParsedConfig['mailboxes'][number];
export type SmtpConfig = ParsedConfig['smtp'];
export type ImapConfig = NonNullable<MailboxConfig['imap']>;
export type SlaPolicyConfig = ParsedConfig['sla']['policies'][number];
export type CalendarConfig = ParsedConfig['calendars'][string];
export type QueueConfig = NonNullable<ParsedConfig['queues']>[number];
export type RoutingRuleConfig = NonNullable<ParsedConfig['routing']>[number];

export interface InboundConfig extends Omit<NonNullable<ParsedConfig['inbound']>, 'mailbox'> {
  /** Filled in with the only mailbox's name when the config leaves it out. */
  mailbox: string;
}

/** The validated config: defaults applied, every path absolute. */
export interface Config extends Omit<ParsedConfig, 'dataDir' | 'templatesDir' | 'inbound'> {
  dataDir: string;
  templatesDir: string;
  inbound?: InboundConfig;
}

/** Reads and validates the config file; throws ConfigError. */
export function loadConfig(path: string): Config {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new ConfigError([`${file}: cannot read file (${code})`]);
  }
  // Editors on some systems save a byte-order mark, which JSON.parse rejects.
  text = text.replace(/^\uFEFF/, '');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([`${file}: ${describeJsonError(text, (err as Error).message)}`]);
  }
  return parseConfig(json, dirname(file));
}

/**
 * The config as `start` runs it: loadConfig, and every `passFile` readable.
 * check-config, doctor and a reload read it the same way, so none of them
 * passes a config that start then refuses, or the other way round.
 */
export function loadRunnableConfig(path: string): Config {
  const config = loadConfig(path);
  const unreadable = unreadablePassFiles(config);
  if (unreadable.length > 0) throw new ConfigError(unreadable);
  return config;
}

/** Validates an already parsed config; relative paths are taken from `baseDir`. Throws ConfigError. */
export function parseConfig(json: unknown, baseDir: string): Config {
  const result = configSchema.safeParse(json, { reportInput: true, error: genericMessage });
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues));
  return hideSecretsWhenPrinted(resolvePaths(result.data, baseDir));
}

/** The SMTP settings a mailbox sends with: the top-level ones with the mailbox's override on top. */
export function smtpFor(config: Config, mailbox: MailboxConfig): SmtpConfig {
  const override = Object.fromEntries(Object.entries(mailbox.smtp ?? {}).filter(([, value]) => value !== undefined));
  return { ...config.smtp, ...override };
}

function resolvePaths(parsed: ParsedConfig, baseDir: string): Config {
  const path = (p: string) => resolve(baseDir, p);
  const secretFile = <T extends { passFile?: string | undefined }>(auth: T): T =>
    auth.passFile === undefined || auth.passFile.startsWith(CREDENTIAL_PREFIX)
      ? auth
      : { ...auth, passFile: path(auth.passFile) };
  const smtp = <T extends { fileDir?: string | undefined; auth?: { passFile?: string | undefined } | undefined }>(s: T): T => ({
    ...s,
    ...(s.fileDir !== undefined && { fileDir: path(s.fileDir) }),
    ...(s.auth !== undefined && { auth: secretFile(s.auth) }),
  });

  // a PostgreSQL URL is not a path; the schema requires dataDir with one
  const database = isPostgresUrl(parsed.database) ? parsed.database : path(parsed.database);
  const { inbound, postgres, ...rest } = parsed;
  return {
    ...rest,
    database,
    ...(postgres !== undefined && { postgres: secretFile(postgres) }),
    dataDir: parsed.dataDir === undefined ? dirname(database) : path(parsed.dataDir),
    templatesDir: parsed.templatesDir === undefined ? join(packageRoot(), 'templates') : path(parsed.templatesDir),
    // The schema already rejected a missing mailbox when there is more than one.
    ...(inbound !== undefined && { inbound: { ...inbound, mailbox: inbound.mailbox ?? parsed.mailboxes[0]!.name } }),
    smtp: smtp(parsed.smtp),
    mailboxes: parsed.mailboxes.map((mailbox) => ({
      ...mailbox,
      ...(mailbox.imap !== undefined && { imap: { ...mailbox.imap, auth: secretFile(mailbox.imap.auth) } }),
      ...(mailbox.smtp !== undefined && { smtp: smtp(mailbox.smtp) }),
    })),
  };
}

/** JSON.stringify and util.inspect of the config show the redacted copy, so a stray log line leaks nothing. */
function hideSecretsWhenPrinted(config: Config): Config {
  Object.defineProperty(config, 'toJSON', { value: () => redactConfig(config), enumerable: false });
  Object.defineProperty(config, inspect.custom, { value: () => redactConfig(config), enumerable: false });
  return config;
}

// ---- problem lines ----

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'an array',
};

/** Messages for issues whose schema does not carry its own. */
function genericMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return issue.origin === 'array' ? `expected at least ${issue.minimum} item(s)` : undefined;
    case 'invalid_key':
      // A refused key of a record (a calendar's name): the key schema's own message.
      return issue.issues[0]?.message;
    default:
      return undefined;
  }
}

function formatIssues(issues: z.core.$ZodIssue[]): string[] {
  const lines = issues.flatMap((issue): string[] => {
    const path = issue.path;
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `${formatPath([...path, key])}: unknown key`);
    if (issue.code === 'invalid_type' && issue.input === undefined) return [`${formatPath(path)}: required`];
    // Under `auth` the offending value may be a password typed in the wrong place.
    const showInput = issue.message.startsWith('expected') && 'input' in issue && !path.includes('auth');
    return [`${formatPath(path)}: ${issue.message}${showInput ? `, got ${describeValue(issue.input)}` : ''}`];
  });
  return [...new Set(lines)];
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(String(segment))) out += out === '' ? String(segment) : `.${String(segment)}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out === '' ? '(top level)' : out;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 60 ? `${shown.slice(0, 56)}..."` : shown;
}

// ---- JSON syntax errors ----
// V8's messages can quote a stretch of the file, which may hold a password,
// so only the position and the kind of error are reported.

const END_OF_INPUT = 'Unexpected end of JSON input';

function reportedPosition(message: string): number | undefined {
  const match = /at position (\d+)/.exec(message);
  return match === null ? undefined : Number(match[1]);
}

function describeJsonError(text: string, message: string): string {
  const position = message.includes(END_OF_INPUT) ? text.length : (reportedPosition(message) ?? firstBadOffset(text));
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  const what = message.includes(END_OF_INPUT)
    ? 'unexpected end of input'
    : message.includes('is not valid JSON')
      ? 'unexpected character'
      : message.replace(/ in JSON at position.*$/s, '').replace(/^./, (c) => c.toLowerCase());
  return `invalid JSON at line ${line}, column ${column}: ${what}`;
}

/** Offset of the character that makes JSON.parse fail, for messages that do not give one. */
function firstBadOffset(text: string): number {
  // A prefix that merely stops early fails only at its end; one holding the
  // bad character fails before it. The shortest prefix of the second kind ends
  // just after that character.
  const failsInside = (prefix: string): boolean => {
    try {
      JSON.parse(prefix);
      return false;
    } catch (err) {
      const message = (err as Error).message;
      if (message.includes(END_OF_INPUT)) return false;
      const at = reportedPosition(message);
      return at === undefined || at < prefix.length;
    }
  };
  let good = 0;
  let bad = text.length;
  while (bad - good > 1) {
    const mid = Math.floor((good + bad) / 2);
    if (failsInside(text.slice(0, mid))) bad = mid;
    else good = mid;
  }
  return bad - 1;
}

import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const SECRET_UNAVAILABLE = 'TICKETD_SECRET_UNAVAILABLE';

/** `passFile: "credential:NAME"` reads a systemd credential (LoadCredential=NAME:...). */
export const CREDENTIAL_PREFIX = 'credential:';

const COMMAND_TIMEOUT_MS = 10_000;
const REDACTED = '[redacted]';

/** Messages name the file or command that failed, never what it held or printed. */
export class SecretError extends Error {
  readonly code = SECRET_UNAVAILABLE;

  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

export interface SecretRef {
  pass?: string | undefined;
  passFile?: string | undefined;
  accessTokenCommand?: string[] | undefined;
}

export interface Secret {
  kind: 'password' | 'accessToken';
  value: string;
}

/**
 * Fetches the secret a config `auth` block points at. Called at each login
 * rather than once, so rotated files and short-lived tokens are picked up.
 */
export async function resolveSecret(ref: SecretRef, env: NodeJS.ProcessEnv = process.env): Promise<Secret> {
  const given = [ref.pass, ref.passFile, ref.accessTokenCommand].filter((v) => v !== undefined).length;
  if (given !== 1) {
    throw new SecretError('auth must set exactly one of "pass", "passFile" or "accessTokenCommand"');
  }
  if (ref.pass !== undefined) return { kind: 'password', value: ref.pass };
  if (ref.passFile !== undefined) return { kind: 'password', value: await readPassFile(ref.passFile, env) };
  return { kind: 'accessToken', value: await runTokenCommand(ref.accessTokenCommand!, env) };
}

async function readPassFile(passFile: string, env: NodeJS.ProcessEnv): Promise<string> {
  let file = passFile;
  if (passFile.startsWith(CREDENTIAL_PREFIX)) {
    const name = passFile.slice(CREDENTIAL_PREFIX.length);
    if (name === '' || name.includes('/') || name === '.' || name === '..') {
      throw new SecretError(`passFile "${passFile}": not a valid credential name`);
    }
    const dir = env.CREDENTIALS_DIRECTORY;
    if (dir === undefined || dir === '') {
      throw new SecretError(
        `passFile "${passFile}": CREDENTIALS_DIRECTORY is not set (is the service started with LoadCredential=${name}:...?)`,
      );
    }
    file = join(dir, name);
  }
  let content: string;
  try {
    content = await readFile(file, 'utf8');
  } catch (err) {
    throw new SecretError(`cannot read password file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const value = content.replace(/\r?\n$/, '');
  if (value === '') throw new SecretError(`password file ${file} is empty`);
  return value;
}

async function runTokenCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const [command, ...args] = argv;
  if (command === undefined) throw new SecretError('accessTokenCommand is empty');
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(command, args, {
      timeout: COMMAND_TIMEOUT_MS,
      encoding: 'utf8',
      env,
    }));
  } catch (err) {
    // Only the outcome is reported: the command's output could hold the token.
    const { code, signal, killed } = err as { code?: number | string; signal?: string; killed?: boolean };
    const outcome = killed
      ? `timed out after ${COMMAND_TIMEOUT_MS / 1000} s`
      : typeof code === 'string'
        ? `could not be started (${code})`
        : signal
          ? `was killed by ${signal}`
          : `exited with status ${code}`;
    throw new SecretError(`accessTokenCommand ${command} ${outcome}`);
  }
  const token = stdout.trim();
  if (token === '') throw new SecretError(`accessTokenCommand ${command} printed nothing`);
  return token;
}

/** A deep copy with every `pass` and access token replaced, for `check-config --json` and logs. */
export function redactConfig<T>(config: T): T {
  return redact(config) as T;
}

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== 'object' || value === null) return value;
  // A value the schema made (a duration, a calendar) holds no secret and prints as the operator wrote it.
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, inner]) => [
      key,
      (key === 'pass' || /^access_?token$/i.test(key)) && inner !== undefined
        ? REDACTED
        : key === 'database' && typeof inner === 'string'
          ? redactUrlPassword(inner)
          : redact(inner),
    ]),
  );
}

/** A database URL as it may be shown or logged: its password (if any) replaced. */
export function redactUrlPassword(database: string): string {
  let url: URL;
  try {
    url = new URL(database);
  } catch {
    return database;
  }
  if (url.password === '') return database;
  url.password = 'x';
  return url.toString().replace(/:x@/, `:${REDACTED}@`);
}

interface AuthRefs {
  smtp: { auth?: SecretRef | undefined };
  mailboxes: { imap?: { auth: SecretRef } | undefined; smtp?: { auth?: SecretRef | undefined } | undefined }[];
}

/**
 * One line per `passFile` that cannot be read now, naming its JSON path, for
 * `check-config`. A `credential:` file exists only inside the service, so it
 * is checked only where CREDENTIALS_DIRECTORY is set.
 */
export function unreadablePassFiles(config: AuthRefs, env: NodeJS.ProcessEnv = process.env): string[] {
  const refs: [string, SecretRef | undefined][] = [
    ['smtp.auth', config.smtp.auth],
    ...config.mailboxes.flatMap((m, i): [string, SecretRef | undefined][] => [
      [`mailboxes[${i}].imap.auth`, m.imap?.auth],
      [`mailboxes[${i}].smtp.auth`, m.smtp?.auth],
    ]),
  ];
  const problems: string[] = [];
  for (const [path, ref] of refs) {
    const passFile = ref?.passFile;
    if (passFile === undefined) continue;
    let file = passFile;
    if (passFile.startsWith(CREDENTIAL_PREFIX)) {
      const dir = env.CREDENTIALS_DIRECTORY;
      if (dir === undefined || dir === '') continue;
      file = join(dir, passFile.slice(CREDENTIAL_PREFIX.length));
    }
    try {
      if (!statSync(file).isFile()) throw Object.assign(new Error(), { code: 'not a file' });
      accessSync(file, constants.R_OK);
    } catch (err) {
      problems.push(`${path}.passFile: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return problems;
}

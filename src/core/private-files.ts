// Everything ticketd writes holds customer mail or a secret, so it is
// readable by the service user only: files 0600, folders 0700. Modes are set
// explicitly after creation, because the mode given to open/mkdir is reduced
// by the process umask, which the operator (or a service manager) chooses.

import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync } from 'node:fs';
import { chmod, mkdir, open, type FileHandle } from 'node:fs/promises';
import { relative, resolve, sep } from 'node:path';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** The folders mkdir -p created, from `first` down to `dir`. */
function created(first: string | undefined, dir: string): string[] {
  if (first === undefined) return [];
  const target = resolve(dir);
  const parts = relative(first, target)
    .split(sep)
    .filter((p) => p !== '');
  const paths = [first];
  for (const part of parts) paths.push(resolve(paths.at(-1)!, part));
  return paths;
}

/** Creates a folder and its missing parents as 0700; folders that already exist are left as they are. */
export function makePrivateDirSync(dir: string): void {
  for (const path of created(mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE }), dir)) chmodSync(path, PRIVATE_DIR_MODE);
}

export async function makePrivateDir(dir: string): Promise<void> {
  for (const path of created(await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE }), dir))
    await chmod(path, PRIVATE_DIR_MODE);
}

/** Opens a file for writing (created or truncated per `flags`, 'w' by default) as 0600. */
export async function openPrivateFile(path: string, flags = 'w'): Promise<FileHandle> {
  const file = await open(path, flags, PRIVATE_FILE_MODE);
  await file.chmod(PRIVATE_FILE_MODE);
  return file;
}

/** Writes a whole file as 0600. */
export async function writePrivateFile(path: string, data: Buffer | string): Promise<void> {
  const file = await openPrivateFile(path);
  try {
    await file.writeFile(data);
  } finally {
    await file.close();
  }
}

/** Creates an empty file as 0600; throws EEXIST when it exists. */
export function createPrivateFileSync(path: string): void {
  const fd = openSync(path, 'wx', PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes an existing file 0600, e.g. a database created by an older version.
 * A missing file is no error, nor one owned by another user (running a
 * command as someone else must not fail on it; that file is its owner's).
 */
export function restrictFileSync(path: string): void {
  try {
    chmodSync(path, PRIVATE_FILE_MODE);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EPERM') throw err;
  }
}

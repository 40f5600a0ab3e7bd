import { readFile } from 'node:fs/promises';
import { UsageError } from './output.js';

/** Where a command's text (a reply, a note) comes from: `--message`, `--file`, or stdin. */
export interface TextSource {
  message?: string;
  file?: string;
}

/** Replies and notes are read whole; anything this large is a mistake (a binary piped in), not a message. */
const MAX_TEXT_BYTES = 1024 * 1024;

/**
 * The text of a reply or note: `--message TEXT`, `--file PATH` (`-` for
 * stdin), or stdin when neither is given and it is not a terminal, so a reply
 * written in an editor or produced by a script keeps its lines as they are.
 * Trailing blank space is dropped; nothing at all is a wrong call, never an
 * empty mail to a customer.
 */
export async function readTextInput(src: TextSource, what: string): Promise<string> {
  if (src.message !== undefined && src.file !== undefined)
    throw new UsageError(`give the ${what} with --message or --file, not both`);
  let text: string;
  if (src.message !== undefined) text = src.message;
  else if (src.file !== undefined && src.file !== '-') text = await readNamedFile(src.file);
  else if (src.file === '-' || !process.stdin.isTTY) text = await readStdin();
  else throw new UsageError(`give the ${what} with --message TEXT, --file PATH, or on stdin`);
  text = text.replace(/\r\n?/g, '\n').replace(/\s+$/, '');
  if (text.trim() === '') throw new UsageError(`the ${what} is empty`);
  return text;
}

async function readNamedFile(path: string): Promise<string> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return decode(data, path);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length;
    if (size > MAX_TEXT_BYTES) throw new UsageError(`stdin holds more than ${MAX_TEXT_BYTES} bytes; a reply or note is text`);
    chunks.push(chunk as Buffer);
  }
  return decode(Buffer.concat(chunks), 'stdin');
}

function decode(data: Buffer, where: string): string {
  if (data.length > MAX_TEXT_BYTES)
    throw new UsageError(`${where} holds more than ${MAX_TEXT_BYTES} bytes; a reply or note is text`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw new UsageError(`${where} is not UTF-8 text`);
  }
}

import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { makePrivateDir, openPrivateFile } from '../core/private-files.js';
import type { AttachmentRecord } from '../core/types.js';

/** Bytes still allowed on disk for the current message; shared by all its attachments. */
export interface AttachmentBudget {
  remaining: number;
}

export interface StoredAttachment {
  record: AttachmentRecord;
  /** The first `captureBytes` bytes of the part, kept in memory whatever the disk budget. */
  captured: Buffer | null;
}

const MAX_NAME_LENGTH = 120;

/**
 * Reduces a sender-chosen file name to a plain basename made of harmless
 * characters, so it can never steer the path (`../`, absolute paths, device
 * names, control characters) nor break shells or URLs that show it later.
 */
export function safeFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(-MAX_NAME_LENGTH);
  return cleaned === '' ? 'attachment' : cleaned;
}

/**
 * Streams one attachment to `<dir>/<index>-<safe name>`, writing no more than
 * the budget allows. The stream is always read to its end, because the parser
 * only moves on once an attachment has been consumed.
 */
export async function storeAttachment(
  content: Readable,
  target: { dir: string; index: number; filename: string | undefined; contentType: string },
  budget: AttachmentBudget,
  captureBytes = 0,
): Promise<StoredAttachment> {
  const hash = createHash('sha256');
  const captured: Buffer[] = [];
  let capturedLength = 0;
  let written = 0;
  let truncated = false;
  let file: FileHandle | null = null;
  let filePath: string | null = null;

  // Opening the file only when some budget is left keeps parts past the cap
  // from leaving empty files behind; the directory appears with the first file.
  if (budget.remaining > 0) {
    await makePrivateDir(target.dir);
    filePath = path.resolve(target.dir, `${target.index}-${safeFileName(target.filename)}`);
    file = await openPrivateFile(filePath);
  }

  try {
    for await (const data of content) {
      const chunk: Buffer = typeof data === 'string' ? Buffer.from(data) : data;
      if (capturedLength < captureBytes) {
        const keep = chunk.subarray(0, captureBytes - capturedLength);
        captured.push(keep);
        capturedLength += keep.length;
      }
      const room = file === null ? 0 : Math.min(chunk.length, budget.remaining);
      if (room < chunk.length) truncated = true;
      if (room > 0 && file !== null) {
        const part = chunk.subarray(0, room);
        await file.write(part);
        hash.update(part);
        written += room;
        budget.remaining -= room;
      }
    }
  } finally {
    await file?.close();
  }

  return {
    record: {
      filename: target.filename ?? '',
      contentType: target.contentType,
      size: written,
      sha256: hash.digest('hex'),
      path: filePath,
      truncated,
    },
    captured: captureBytes > 0 ? Buffer.concat(captured, capturedLength) : null,
  };
}

import { randomUUID } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { AttachmentRecord } from '../core/types.js';

/**
 * Attachment folders of messages between parse and commit. Each parse
 * writes into a folder of its own under `.incoming/`, so a parse killed
 * half-way or two parses of the same message never leave a half-written
 * file where a ticket points. Before the commit the folder is renamed to its
 * place, `<root>/<sha256 of the raw message>` (a folder that is already
 * there holds the same files, written once, and is kept); after the commit
 * a folder that this process created is deleted again unless some message
 * using it was stored. Several messages in flight with the same raw bytes
 * (one delivery to two mailboxes) share the folder: the last to finish
 * decides.
 */
export class AttachmentStaging {
  /** Published folders with messages in flight in this process. */
  private static readonly held = new Map<string, { holders: number; created: boolean; kept: boolean }>();

  constructor(private readonly root: string) {}

  /** A fresh folder to parse into. */
  newStagingDir(): string {
    return join(this.root, '.incoming', randomUUID());
  }

  async discard(staging: string): Promise<void> {
    await rm(staging, { recursive: true, force: true });
  }

  /**
   * Moves what a parse wrote into `staging` to its place and points the
   * records there; null when the parse wrote no file. The folder stays held
   * until `release`.
   */
  async publish(
    staging: string,
    sha256: string,
    records: AttachmentRecord[],
  ): Promise<{ dir: string; records: AttachmentRecord[] } | null> {
    const dir = join(this.root, sha256);
    const written = records.some((r) => r.path !== null);
    let created = false;
    try {
      if (written) {
        try {
          await rename(join(staging, sha256), dir);
          created = true;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
        }
      }
    } finally {
      // A parse that wrote no file created no folder.
      if (written) await this.discard(staging);
    }
    if (!written) return null;
    const entry = AttachmentStaging.held.get(dir) ?? { holders: 0, created: false, kept: false };
    entry.holders += 1;
    entry.created ||= created;
    AttachmentStaging.held.set(dir, entry);
    return { dir, records: records.map((r) => (r.path === null ? r : { ...r, path: join(dir, basename(r.path)) })) };
  }

  /** After the commit: `kept` when the message was stored with its attachments. */
  async release(dir: string, kept: boolean): Promise<void> {
    const entry = AttachmentStaging.held.get(dir);
    if (entry === undefined) return;
    entry.holders -= 1;
    entry.kept ||= kept;
    if (entry.holders > 0) return;
    AttachmentStaging.held.delete(dir);
    if (entry.created && !entry.kept) await rm(dir, { recursive: true, force: true });
  }
}

// Messages the pipeline could not take (unparseable, a stage that threw),
// kept with their raw bytes until staff release or discard them.

import type { MessageOrigin } from '../core/types.js';
import type { SqlEngine } from './sql-engine.js';
import type { QuarantineEntry, QuarantineStore } from './store.js';
import { QuarantineReleasedError } from './ticket-errors.js';

export class SqlQuarantineStore implements QuarantineStore {
  constructor(private readonly engine: SqlEngine) {}

  async listQuarantine(opts: { includeReleased?: boolean } = {}): Promise<QuarantineEntry[]> {
    return (await this.engine.all<RawQuarantine>('list-quarantine', { all: opts.includeReleased ? 1 : 0 })).map(toQuarantine);
  }

  async quarantineRaw(id: number): Promise<{ entry: QuarantineEntry; raw: Buffer } | null> {
    const row = await this.engine.get<RawQuarantine & { raw: Buffer }>('quarantine-by-id', [id]);
    return row ? { entry: toQuarantine(row), raw: row.raw } : null;
  }

  async markQuarantineReleased(id: number, outcome: string, now: number): Promise<void> {
    await this.engine.run('release-quarantine', [now, outcome, id]);
  }

  discardQuarantine(id: number, now: number): Promise<{ entry: QuarantineEntry; bytesRemoved: boolean } | null> {
    return this.engine.transaction(async (tx) => {
      const row = await tx.get<RawQuarantine & { rawSha: string }>('quarantine-by-id', [id]);
      if (!row) return null;
      if (row.releasedAt !== null) throw new QuarantineReleasedError(id, row.releaseOutcome);
      await tx.run('insert-discarded-raw', { empty: Buffer.alloc(0), now });
      await tx.run('discard-quarantine', { id, now });
      // Kept when a message or another entry still holds the same bytes.
      const removed = (await tx.run('drop-unused-raw', { sha: row.rawSha })).changes > 0;
      const entry = toQuarantine((await tx.get<RawQuarantine>('quarantine-by-id', [id]))!);
      return { entry: { ...entry, size: row.size }, bytesRemoved: removed };
    });
  }
}

interface RawQuarantine {
  id: number;
  mailbox: string;
  origin: string;
  reason: string;
  createdAt: number;
  releasedAt: number | null;
  releaseOutcome: string | null;
  size: number;
}

function toQuarantine(r: RawQuarantine): QuarantineEntry {
  return {
    id: r.id,
    mailbox: r.mailbox,
    origin: JSON.parse(r.origin) as MessageOrigin,
    reason: r.reason,
    createdAt: r.createdAt,
    releasedAt: r.releasedAt,
    releaseOutcome: r.releaseOutcome,
    size: r.size,
  };
}
